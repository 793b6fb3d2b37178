"""The change history reads in people's words, not the API's JSON."""

from __future__ import annotations

from crm.templatetags.change_log import change_field, change_value


def test_field_names_read_as_labels() -> None:
    assert change_field("org_id") == "Organization"
    assert change_field("expected_close_date") == "Expected close date"
    assert change_field("marketing_status") == "Marketing status"


def test_values_read_as_they_look_on_the_page() -> None:
    emails = [{"value": "a@x.test", "primary": True, "label": "work"}, {"value": "b@x.test"}]
    assert change_value("emails", emails) == "a@x.test, b@x.test"
    assert change_value("postal_address", {"value": "Main St 1", "country": ""}) == "Main St 1"
    assert change_value("postal_address", {"value": "", "country": ""}) == "—"
    assert change_value("value", {"amount": 500, "currency": "EUR"}) == "500 EUR"
    assert change_value("visible_to", 7) == "Entire company"
    assert change_value("is_archived", True) == "Yes"
    assert change_value("notes", "") == "—"
    assert change_value("label_ids", [3, 5]) == "3, 5"
