"""Spreadsheet import (I4): read a CSV or XLSX file, map its columns to the fields of an item
kind, preview, and run it in resumable, undoable chunks.

The framework knows no item kind itself: `registry` holds one handler per kind (persons and
organizations from here, deals and leads registered by crm.sales, which sits above us)."""
