CREATE TABLE IF NOT EXISTS invoices(id TEXT PRIMARY KEY, vendor TEXT NOT NULL, amount REAL NOT NULL);
INSERT OR IGNORE INTO invoices VALUES ('INV-2001', 'Acme', 125.00), ('INV-2002', 'Shady Ltd', 40.00);
CREATE TABLE IF NOT EXISTS payments(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, invoice_id TEXT NOT NULL, amount REAL NOT NULL,
  paid_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
