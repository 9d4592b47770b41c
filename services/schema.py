"""The versioned SQLite schema of ussdsim: an ordered list of migrations.

A migration is applied once, in order, inside one transaction, and the version reached is
kept in ``PRAGMA user_version``.  Never edit a migration that has shipped: add a new one.
Version 1 is the gateway's message queue and message log (SPEC GW-06, GW-07); the operator
core adds its domain tables as later versions.
"""

from __future__ import annotations

from typing import Final

MESSAGES_V1: Final = """
-- Every mobile-terminated message the gateway owes somebody (SPEC GW-06) and every
-- person-to-person submit, with the state it really reached (GW-07).
CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,          -- the SMPP message_id (rendered hex or decimal)
    kind                TEXT NOT NULL,                -- 'p2p' | 'reply' | 'receipt'
    origin_system_id    TEXT NOT NULL DEFAULT '',     -- ESME that submitted it ('' for the simulator)
    service_type        TEXT NOT NULL DEFAULT '',
    source_addr_ton     INTEGER NOT NULL,
    source_addr_npi     INTEGER NOT NULL,
    source_addr         TEXT NOT NULL,
    dest_addr_ton       INTEGER NOT NULL,
    dest_addr_npi       INTEGER NOT NULL,
    destination_addr    TEXT NOT NULL,
    esm_class           INTEGER NOT NULL DEFAULT 0,
    protocol_id         INTEGER NOT NULL DEFAULT 0,
    priority_flag       INTEGER NOT NULL DEFAULT 0,
    registered_delivery INTEGER NOT NULL DEFAULT 0,
    data_coding         INTEGER NOT NULL DEFAULT 0,
    short_message       BLOB NOT NULL,
    tlvs                BLOB NOT NULL DEFAULT x'',    -- raw TLV stream, re-sent as it came
    submitted_at        INTEGER NOT NULL,             -- simulator clock, seconds
    expires_at          INTEGER NOT NULL,             -- end of the validity period
    state               INTEGER NOT NULL,             -- SMPP 3.4 §5.2.28 message_state
    done_at             INTEGER,
    error_code          INTEGER NOT NULL DEFAULT 0,
    receipt_for         INTEGER                       -- for kind 'receipt': the receipted message
);
CREATE INDEX messages_enroute ON messages (state) WHERE state = 1;
"""

OPERATOR_CORE_V2: Final = """
-- The operator core (issue 4): subscribers, their options, packages, money and fees.
-- Money is integer minor units, data integer MB, voice integer minutes, time clock seconds.
CREATE TABLE subscribers (
    msisdn       TEXT PRIMARY KEY,                  -- wire form (SPEC section 0)
    profile      TEXT NOT NULL,
    tariff       TEXT NOT NULL,                     -- tariff code of the profile
    status       TEXT NOT NULL,                     -- active | blocked_* | terminated
    owner_id     TEXT NOT NULL,                     -- who the SIM is registered to (MP-21, TV-11)
    region       TEXT NOT NULL,                     -- home region code (MP-03)
    segment      TEXT NOT NULL,                     -- private | business (TV-03)
    company      TEXT,                              -- business customer (BQ-02, BQ-05)
    account      TEXT,                              -- single personal account, ELS (TV-14)
    balance      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    tariff_since INTEGER NOT NULL,
    note         TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX subscribers_profile ON subscribers (profile);
CREATE INDEX subscribers_company ON subscribers (company) WHERE company IS NOT NULL;
CREATE INDEX subscribers_account ON subscribers (account) WHERE account IS NOT NULL;

CREATE TABLE subscriber_options (
    msisdn       TEXT NOT NULL REFERENCES subscribers (msisdn),
    code         TEXT NOT NULL,
    activated_at INTEGER NOT NULL,
    params       TEXT NOT NULL DEFAULT '{}',        -- JSON: visa, card_registered_at, debt...
    PRIMARY KEY (msisdn, code)
) WITHOUT ROWID;

-- Every change of a subscriber's fields, as the hooks saw it (status history for MP-17).
CREATE TABLE subscriber_changes (
    id     INTEGER PRIMARY KEY,
    msisdn TEXT NOT NULL REFERENCES subscribers (msisdn),
    at     INTEGER NOT NULL,
    field  TEXT NOT NULL,
    old    TEXT,
    new    TEXT
);
CREATE INDEX subscriber_changes_msisdn ON subscriber_changes (msisdn, id);

CREATE TABLE packages (
    id          INTEGER PRIMARY KEY,
    msisdn      TEXT NOT NULL REFERENCES subscribers (msisdn),
    kind        TEXT NOT NULL,                      -- data | voice | sms
    destination TEXT NOT NULL,                      -- voice: any | network | friends | home ...
    zone        TEXT NOT NULL,                      -- home | abroad | everywhere
    initial     INTEGER NOT NULL,
    remaining   INTEGER NOT NULL CHECK (remaining >= 0),
    valid_from  INTEGER NOT NULL,
    valid_until INTEGER,                            -- NULL: no end
    source      TEXT NOT NULL,                      -- tariff | option:<code> | a service | grant
    label       TEXT NOT NULL DEFAULT '',
    expired_at  INTEGER
);
CREATE INDEX packages_live ON packages (msisdn, kind) WHERE expired_at IS NULL;
CREATE INDEX packages_expiry ON packages (valid_until) WHERE expired_at IS NULL;

-- Every movement of money; the sum per subscriber is its balance.
CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY,
    msisdn        TEXT NOT NULL REFERENCES subscribers (msisdn),
    at            INTEGER NOT NULL,
    amount        INTEGER NOT NULL,                 -- negative: charge, positive: credit
    balance_after INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    reference     TEXT NOT NULL DEFAULT '',
    detail        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ledger_msisdn ON ledger (msisdn, id);
CREATE INDEX ledger_reference ON ledger (msisdn, reason, reference);

CREATE TABLE topups (
    id     INTEGER PRIMARY KEY,
    msisdn TEXT NOT NULL REFERENCES subscribers (msisdn),
    at     INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    method TEXT NOT NULL
);
CREATE INDEX topups_msisdn ON topups (msisdn, at);

-- Charges that fall due again and again: the tariff fee, options, services' own (MP-17).
CREATE TABLE recurring_charges (
    msisdn       TEXT NOT NULL REFERENCES subscribers (msisdn),
    code         TEXT NOT NULL,
    owner        TEXT NOT NULL,                     -- core | the service whose handler runs it
    amount       INTEGER NOT NULL,
    period       TEXT NOT NULL,                     -- month | day
    anchor_day   INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    part         INTEGER NOT NULL DEFAULT 1,        -- the instalment due next (TV-12)
    period_start INTEGER,
    period_end   INTEGER,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (msisdn, code)
) WITHOUT ROWID;
CREATE INDEX recurring_charges_due ON recurring_charges (next_at);

-- What was due and what was paid per period of each fee (TV-08: "has every member paid?").
CREATE TABLE fee_records (
    id             INTEGER PRIMARY KEY,
    msisdn         TEXT NOT NULL REFERENCES subscribers (msisdn),
    code           TEXT NOT NULL,
    period_start   INTEGER NOT NULL,
    period_end     INTEGER NOT NULL,
    part           INTEGER NOT NULL,
    amount_due     INTEGER NOT NULL,
    amount_charged INTEGER NOT NULL,
    status         TEXT NOT NULL,                   -- paid | unpaid | skipped
    at             INTEGER NOT NULL,
    detail         TEXT NOT NULL DEFAULT '',
    UNIQUE (msisdn, code, period_start, part)
);
CREATE INDEX fee_records_open ON fee_records (msisdn, status) WHERE status <> 'paid';

-- Consumption recorded through the core (SPEC CU-01, CU-02).
CREATE TABLE usage (
    id          INTEGER PRIMARY KEY,
    msisdn      TEXT NOT NULL REFERENCES subscribers (msisdn),
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    destination TEXT NOT NULL,
    abroad      INTEGER NOT NULL,
    country     TEXT,
    paid_by     TEXT NOT NULL,                      -- JSON list of [source, amount]
    billed      INTEGER NOT NULL,
    refused     INTEGER NOT NULL
);
CREATE INDEX usage_msisdn ON usage (msisdn, id);

-- Small facts kept with the state: the clock offset, whether the demo was loaded...
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

MIGRATIONS: Final[tuple[str, ...]] = (MESSAGES_V1, OPERATOR_CORE_V2)
