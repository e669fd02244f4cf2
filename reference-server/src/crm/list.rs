//! The query language every CRM list shares: filters, search, sort and keyset pagination.
