"""The Python twin of the Prometheus exporter writes, for the fixed metrics document in
tests/data/metrics_example.json, exactly the text the Rust exporter wrote into
tests/data/metrics_example.prom (tests/prometheus.rs keeps that file equal to Rust's output)."""

import json
import math
import pathlib

from remotemedia.prometheus import format_value, to_prometheus

DATA = pathlib.Path(__file__).resolve().parent.parent / "data"


def test_fixed_document_gives_the_rust_text_byte_for_byte():
    doc = json.loads((DATA / "metrics_example.json").read_text())
    expected = (DATA / "metrics_example.prom").read_bytes()
    assert to_prometheus(doc).encode() == expected


def test_numbers_take_the_forms_rust_writes():
    # The same cases as the Rust unit test `floats_print_as_python_repr`.
    cases = [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (5e-324, "5e-324"),
        (779539845543410.25, "779539845543410.2"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (True, "1"),
        (False, "0"),
        (2**64 - 1, "18446744073709551615"),
        (-42, "-42"),
        # serde_json reads integers beyond 64 bits as floats; so does the twin.
        (2**70, "1.1805916207174113e+21"),
        ("12", None),
        (None, None),
    ]
    for value, want in cases:
        assert format_value(value) == want, value


def test_label_values_are_escaped_and_missing_fields_dropped():
    text = to_prometheus({"workers": 2, "node_metrics": [{"node_id": 'a"b\\c\nd', "error_count": 0}]})
    assert text == (
        "# HELP remotemedia_workers Timely workers the pipeline runs on.\n"
        "# TYPE remotemedia_workers gauge\n"
        "remotemedia_workers 2\n"
        "# HELP remotemedia_node_errors_total Node executions that failed.\n"
        "# TYPE remotemedia_node_errors_total counter\n"
        'remotemedia_node_errors_total{node_id="a\\"b\\\\c\\nd"} 0\n'
    )
    assert to_prometheus([1, 2]) == ""
