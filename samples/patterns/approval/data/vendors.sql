-- The sample vendor master: bank-account changes are recorded here once approved.
CREATE TABLE IF NOT EXISTS bank_account_changes(idempotency_key TEXT PRIMARY KEY, job_id TEXT NOT NULL, vendor_id TEXT NOT NULL,
  iban TEXT NOT NULL, approved_by TEXT NOT NULL, changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
