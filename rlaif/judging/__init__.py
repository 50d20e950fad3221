"""Running the judge over a round's pairs: checkpointed chunks in-process or on Ray shards (`checkpointed`), the
audit log of every judgment (`audit_log`), and the label figures the judge stage reports (`figures`)."""
