//! Integration and property tests for edge-core.

mod ledger_model;
mod money_props;
mod msisdn_props;
