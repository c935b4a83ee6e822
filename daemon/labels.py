"""Docker's `label=` filters, the same for containers, images and networks."""


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """Every `key` or `key=value` filter must be satisfied."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True
