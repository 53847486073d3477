-- The sample ledger: what accounts payable already booked, and where reconciliation writes.
CREATE TABLE IF NOT EXISTS invoices(id TEXT PRIMARY KEY, vendor TEXT NOT NULL, amount REAL NOT NULL, currency TEXT NOT NULL);
INSERT OR IGNORE INTO invoices VALUES
  ('INV-1001', 'ACME Corp', 120.00, 'EUR'),
  ('INV-1002', 'Globex',    960.00, 'EUR'),
  ('INV-1003', 'Initech',    98.90, 'EUR'),
  ('INV-1004', 'Umbrella',  455.00, 'EUR');
CREATE TABLE IF NOT EXISTS journal(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, lines TEXT NOT NULL, total REAL NOT NULL, posted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
CREATE TABLE IF NOT EXISTS exceptions(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, exceptions TEXT NOT NULL, flagged_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
