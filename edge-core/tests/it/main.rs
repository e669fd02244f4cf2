//! Integration and property tests for edge-core.

mod money_props;
mod msisdn_props;
