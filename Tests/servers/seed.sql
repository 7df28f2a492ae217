-- Data the example plan (examples/restock.plan.json) and the tests read.
CREATE TABLE inventory (
  sku        text PRIMARY KEY,
  warehouse  text NOT NULL,
  quantity   integer NOT NULL CHECK (quantity >= 0),
  unit_cost  numeric(10, 2) NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT '2026-01-15 09:30:00+00'
);
INSERT INTO inventory (sku, warehouse, quantity, unit_cost) VALUES
  ('A-100', 'north', 12, 0.21),
  ('B-200', 'north', 3, 1.60),
  ('C-300', 'south', 0, 3.10),
  ('D-400', 'south', 450, 0.04);
COMMENT ON TABLE inventory IS 'Stock per SKU (example data)';
