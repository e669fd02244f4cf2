//! A WhatsApp Cloud API client with multi-tenant webhook handling.
