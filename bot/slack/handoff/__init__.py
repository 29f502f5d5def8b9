"""Hand-off to a human supporter: the request form, the consultation card, take / resolve, the relay between
the asker's thread and the card's, and turning a resolved consultation into a curated answer."""
