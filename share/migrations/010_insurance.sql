-- 010_insurance.sql - the insurance data the heavy reports read: clients,
-- their contracts (one branch each), the premium instalments called on
-- the contracts and the claims declared on them.
--
-- `celeriac demo-data` fills these tables with reproducible sample data;
-- a real deployment loads them from the policy system.  Amounts are in
-- euros, numeric(12,2) so that sums are exact.  Like every migration
-- file, no BEGIN/COMMIT here: `celeriac db migrate` wraps it.

-- Lines of business.  The code is what the other tables hold; the label
-- is what reports print.
CREATE TABLE insurance_branches (
	code		text PRIMARY KEY,
	label		text NOT NULL,
	position	integer NOT NULL	-- report order
);
INSERT INTO insurance_branches (code, label, position) VALUES
	('auto', 'Auto', 1),
	('habitation', 'Habitation', 2),
	('sante', 'Santé', 3),
	('prevoyance', 'Prévoyance', 4);

CREATE TABLE clients (
	id		bigserial PRIMARY KEY,
	client_no	text NOT NULL,		-- CL-000001
	last_name	text NOT NULL,
	first_name	text NOT NULL,
	birth_date	date,
	email		text,
	phone		text,
	address		text,
	postal_code	text,
	city		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT clients_client_no_key UNIQUE (client_no)
);

CREATE TABLE contracts (
	id		bigserial PRIMARY KEY,
	contract_no	text NOT NULL,		-- AUT-2023-000001
	client_id	bigint NOT NULL REFERENCES clients (id)
			    ON DELETE CASCADE,
	branch		text NOT NULL REFERENCES insurance_branches (code),
	product		text NOT NULL,
	start_date	date NOT NULL,
	end_date	date,			-- NULL: open-ended
	annual_premium	numeric(12,2) NOT NULL,
	status		text NOT NULL DEFAULT 'active',
	CONSTRAINT contracts_contract_no_key UNIQUE (contract_no),
	CONSTRAINT contracts_premium_check CHECK (annual_premium >= 0),
	CONSTRAINT contracts_dates_check CHECK (end_date IS NULL OR
	    end_date >= start_date),
	CONSTRAINT contracts_status_check CHECK (status IN ('active',
	    'suspended', 'terminated'))
);
CREATE INDEX contracts_client_idx ON contracts (client_id);
-- The reports list contracts by branch, then number.
CREATE INDEX contracts_branch_idx ON contracts (branch, id);

-- Premium instalments: one row per amount called (monthly here).
CREATE TABLE premiums (
	id		bigserial PRIMARY KEY,
	contract_id	bigint NOT NULL REFERENCES contracts (id)
			    ON DELETE CASCADE,
	due_date	date NOT NULL,
	amount		numeric(12,2) NOT NULL,
	paid_on		date,
	status		text NOT NULL DEFAULT 'due',
	CONSTRAINT premiums_amount_check CHECK (amount >= 0),
	CONSTRAINT premiums_status_check CHECK (status IN ('paid', 'due',
	    'late')),
	CONSTRAINT premiums_paid_check CHECK ((status = 'paid') =
	    (paid_on IS NOT NULL))
);
CREATE INDEX premiums_contract_idx ON premiums (contract_id);
-- Loss ratio by month: premiums called per month.
CREATE INDEX premiums_due_idx ON premiums (due_date);

CREATE TABLE claims (
	id		bigserial PRIMARY KEY,
	claim_no	text NOT NULL,		-- SIN-2024-000001
	contract_id	bigint NOT NULL REFERENCES contracts (id)
			    ON DELETE CASCADE,
	category	text NOT NULL,		-- collision, dégât des eaux, ...
	occurred_on	date NOT NULL,
	reported_on	date NOT NULL,
	amount_claimed	numeric(12,2) NOT NULL,
	amount_paid	numeric(12,2) NOT NULL DEFAULT 0,
	status		text NOT NULL DEFAULT 'open',
	settled_on	date,
	CONSTRAINT claims_claim_no_key UNIQUE (claim_no),
	CONSTRAINT claims_amounts_check CHECK (amount_claimed >= 0 AND
	    amount_paid >= 0),
	CONSTRAINT claims_dates_check CHECK (reported_on >= occurred_on),
	CONSTRAINT claims_status_check CHECK (status IN ('open', 'in_review',
	    'settled', 'rejected')),
	-- Only a settled claim has paid anything.
	CONSTRAINT claims_settled_check CHECK ((status = 'settled') =
	    (settled_on IS NOT NULL) AND (status = 'settled' OR
	    amount_paid = 0))
);
CREATE INDEX claims_contract_idx ON claims (contract_id);
-- Claims by month of occurrence (loss ratio, listings by date).
CREATE INDEX claims_occurred_idx ON claims (occurred_on, id);
