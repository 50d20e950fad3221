"""People checking the AI judge: the audit sample, its export and import, agreement figures (review), and the same
loop through a Label Studio project (label_studio)."""
