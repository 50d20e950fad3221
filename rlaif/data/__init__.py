"""The data that passes between stages and the files people write: the one atomic writer and the readers (io), the
records between stages with one reader and one writer each (records), the constitution import, the over-refusal suites."""
