CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL);
CREATE TABLE tickets (id TEXT PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), subject TEXT NOT NULL, body TEXT NOT NULL);
INSERT INTO customers VALUES (1, 'Acme Corp', 'enterprise'), (2, 'Bob''s Bikes', 'free');
INSERT INTO tickets VALUES
  ('T-1001', 1, 'Invoice charged twice', 'Our March invoice was charged twice to the company card. Please refund one of the charges.'),
  ('T-1002', 2, 'Password reset', 'I cannot log in and the reset e-mail never arrives.');
