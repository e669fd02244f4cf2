//! A multi-tenant Safaricom Daraja (M-Pesa) client.
