"""The Email sync settings pages (A1 to A4, A6): connect, watch and change mail accounts."""
