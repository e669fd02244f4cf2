//! The HTTP API: routes, error envelope, extractors and middleware.

pub mod activities;
pub mod admin;
pub mod analytics;
pub mod audit;
pub mod auth;
pub mod automation;
pub mod billing;
pub mod callbacks;
pub mod chat;
pub mod client;
pub mod deals;
pub mod error;
pub mod exports;
pub mod extract;
pub mod health;
pub mod imports;
pub mod middleware;
pub mod mpesa;
pub mod notifications;
pub mod organization;
pub mod payments;
pub mod pipelines;
pub mod prospects;
pub mod relationships;
pub mod targets;
pub mod tickets;
pub mod usage;
pub mod views;
pub mod wallet;
pub mod webhooks;
pub mod whatsapp;

use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri, header};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

use edge_tenancy::Permission;
use edge_tenancy::axum::{AuthLayer, RateLimitLayer};

use crate::AppState;
use error::ApiError;

/// The API routes, without the cross-cutting layers (see [`with_layers`]).
///
/// Teams embedding the server can merge this into their own router.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api_v1(state))
        .nest("/callbacks", callbacks::routes())
        .nest("/webhooks", whatsapp::webhook_routes())
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `/api/v1`, built from [`catalog`]. Authenticated requests are resolved to a tenant,
/// rate-limited per organization by its plan, counted as usage, checked against the
/// route's permission and then against the organization's subscription (see
/// [`available_when_suspended`]) before the handler runs.
fn api_v1(state: &AppState) -> Router<AppState> {
    let mut public = Router::new();
    let mut authenticated = Router::new();
    for route in catalog() {
        if route.access == Access::Public {
            public = public.route(route.path, route.handler);
            continue;
        }
        // After the permission check: a caller who may not do this anyway hears 403.
        let gated = route.handler.layer(axum::middleware::from_fn_with_state(
            middleware::SubscriptionGate::new(state, route.available_when_suspended),
            middleware::subscription_gate,
        ));
        let handler = match route.access {
            Access::Permission(permission) => gated.layer(edge_tenancy::axum::require(permission)),
            _ => gated,
        };
        authenticated = authenticated.route(route.path, handler);
    }
    let authenticated = authenticated
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            usage::count_api_call,
        ))
        .layer(RateLimitLayer::new(state.limiter.clone(), "api"))
        .layer(axum::middleware::from_fn(middleware::scope_to_organization))
        .layer(AuthLayer::new(state.resolver.clone()));
    // Until a request is authenticated, its lookups (tokens, API keys, emails) are
    // cross-tenant by design; after, it sees only its organization's rows.
    public
        .merge(authenticated)
        .layer(axum::middleware::from_fn(middleware::scope_cross_tenant))
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-up, login, token refresh, accepting an invitation).
    Public,
    /// Any authenticated caller (a user's token or an API key).
    Authenticated,
    /// An authenticated caller whose role grants this permission.
    Permission(Permission),
}

/// One route of `/api/v1`.
pub struct ApiRoute {
    /// The method.
    pub method: Method,
    /// The path under `/api/v1`, with `{id}` placeholders.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Whether an organization whose subscription is suspended may still call it
    /// ([`available_when_suspended`]); the others answer 402 `subscription_suspended`.
    pub available_when_suspended: bool,
    handler: MethodRouter<AppState>,
}

impl ApiRoute {
    fn new(
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        Self {
            available_when_suspended: available_when_suspended(&method, path),
            method,
            path,
            access,
            handler,
        }
    }
}

/// The one rule for what an organization whose subscription is suspended may still do:
/// read and export everything (every `GET`), manage the caller's own session (`/auth/*`,
/// `/me`, `/me/password`), pay (`/billing/*`, `/wallet/top-ups`, `/payments*`, and the
/// M-Pesa settings, `/mpesa/settings*`), and take access away (revoke an API key,
/// deactivate a member, rotate the M-Pesa callback token, disconnect a WhatsApp number,
/// delete a webhook endpoint), which must never wait for a
/// payment. Every other route is a paid feature and answers 402 `subscription_suspended`
/// until a payment is applied. The platform operator is never blocked.
pub fn available_when_suspended(method: &Method, path: &str) -> bool {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    let reads = *method == Method::GET || *method == Method::HEAD;
    let own_session = under("/auth") || path == "/me" || path == "/me/password";
    let paying = under("/billing")
        || under("/wallet/top-ups")
        || under("/payments")
        || under("/mpesa/settings");
    let taking_access_away = matches!(
        (method.as_str(), path),
        ("DELETE", "/api-keys/{id}")
            | ("POST", "/users/{id}/deactivate")
            | ("POST", "/mpesa/callback-token/rotate")
            | ("DELETE", "/whatsapp/numbers/{id}")
            | ("DELETE", "/webhook-endpoints/{id}")
    );
    reads || own_session || paying || taking_access_away
}

/// Every route of `/api/v1`, in one place: the router is built from this list, and the
/// tenant-isolation and permission tests enumerate it, so a route added here is covered
/// by them without anyone remembering to.
pub fn catalog() -> Vec<ApiRoute> {
    use Access::{Authenticated, Permission as P, Public};
    use Permission as Perm;
    vec![
        ApiRoute::new(Method::POST, "/auth/signup", Public, post(auth::signup)),
        ApiRoute::new(Method::POST, "/auth/login", Public, post(auth::login)),
        ApiRoute::new(Method::POST, "/auth/refresh", Public, post(auth::refresh)),
        ApiRoute::new(
            Method::POST,
            "/invitations/accept",
            Public,
            post(organization::accept_invitation),
        ),
        ApiRoute::new(
            Method::POST,
            "/auth/logout",
            Authenticated,
            post(auth::logout),
        ),
        ApiRoute::new(
            Method::POST,
            "/auth/switch",
            Authenticated,
            post(auth::switch),
        ),
        ApiRoute::new(Method::GET, "/me", Authenticated, get(auth::me)),
        ApiRoute::new(
            Method::POST,
            "/me/password",
            Authenticated,
            post(auth::change_password),
        ),
        ApiRoute::new(
            Method::GET,
            "/organization",
            P(Perm::OrgRead),
            get(organization::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/organization",
            P(Perm::OrgUpdate),
            patch(organization::update),
        ),
        ApiRoute::new(
            Method::GET,
            "/organization/settings",
            P(Perm::OrgRead),
            get(organization::settings),
        ),
        ApiRoute::new(
            Method::PUT,
            "/organization/settings",
            P(Perm::OrgUpdate),
            put(organization::replace_settings),
        ),
        ApiRoute::new(
            Method::GET,
            "/api-keys",
            P(Perm::ApiKeysManage),
            get(organization::list_api_keys),
        ),
        ApiRoute::new(
            Method::POST,
            "/api-keys",
            P(Perm::ApiKeysManage),
            post(organization::create_api_key),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/api-keys/{id}",
            P(Perm::ApiKeysManage),
            delete(organization::revoke_api_key),
        ),
        ApiRoute::new(
            Method::GET,
            "/users",
            P(Perm::MembersRead),
            get(organization::list_members),
        ),
        ApiRoute::new(
            Method::POST,
            "/users/invitations",
            P(Perm::MembersManage),
            post(organization::invite),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/users/{id}",
            P(Perm::MembersManage),
            patch(organization::change_role),
        ),
        ApiRoute::new(
            Method::POST,
            "/users/{id}/deactivate",
            P(Perm::MembersManage),
            post(organization::deactivate),
        ),
        ApiRoute::new(
            Method::POST,
            "/users/{id}/reactivate",
            P(Perm::MembersManage),
            post(organization::reactivate),
        ),
        ApiRoute::new(
            Method::GET,
            "/wallet",
            P(Perm::BillingRead),
            get(wallet::balance),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/wallet",
            P(Perm::BillingManage),
            patch(wallet::update),
        ),
        ApiRoute::new(
            Method::GET,
            "/wallet/entries",
            P(Perm::BillingRead),
            get(wallet::entries),
        ),
        ApiRoute::new(
            Method::POST,
            "/wallet/top-ups",
            P(Perm::BillingManage),
            post(payments::top_up),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/collections",
            P(Perm::CrmWrite),
            post(payments::collect),
        ),
        ApiRoute::new(
            Method::GET,
            "/payments",
            P(Perm::BillingRead),
            get(payments::list),
        ),
        ApiRoute::new(
            Method::GET,
            "/payments/{id}",
            P(Perm::BillingRead),
            get(payments::get),
        ),
        ApiRoute::new(
            Method::POST,
            "/payments/{id}/status-query",
            P(Perm::BillingManage),
            post(payments::status_query),
        ),
        ApiRoute::new(
            Method::POST,
            "/payments/{id}/reversal",
            P(Perm::BillingManage),
            post(payments::reversal),
        ),
        ApiRoute::new(
            Method::GET,
            "/mpesa/settings",
            P(Perm::CredentialsManage),
            get(mpesa::get),
        ),
        ApiRoute::new(
            Method::PUT,
            "/mpesa/settings",
            P(Perm::CredentialsManage),
            put(mpesa::put),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/settings/test",
            P(Perm::CredentialsManage),
            post(mpesa::test),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/callback-token/rotate",
            P(Perm::CredentialsManage),
            post(mpesa::rotate_token),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/c2b/register",
            P(Perm::CredentialsManage),
            post(mpesa::register_c2b),
        ),
        ApiRoute::new(
            Method::GET,
            "/prospects",
            P(Perm::CrmRead),
            get(prospects::list),
        ),
        ApiRoute::new(
            Method::POST,
            "/prospects",
            P(Perm::CrmWrite),
            post(prospects::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/prospects/{id}",
            P(Perm::CrmRead),
            get(prospects::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/prospects/{id}",
            P(Perm::CrmWrite),
            patch(prospects::update),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/prospects/{id}",
            P(Perm::CrmDelete),
            delete(prospects::delete),
        ),
        ApiRoute::new(
            Method::POST,
            "/prospects/{id}/convert",
            P(Perm::CrmWrite),
            post(prospects::convert),
        ),
        ApiRoute::new(
            Method::GET,
            "/relationships",
            P(Perm::CrmRead),
            get(relationships::list),
        ),
        ApiRoute::new(
            Method::POST,
            "/relationships",
            P(Perm::CrmWrite),
            post(relationships::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/relationships/{id}",
            P(Perm::CrmRead),
            get(relationships::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/relationships/{id}",
            P(Perm::CrmWrite),
            patch(relationships::update),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/relationships/{id}",
            P(Perm::CrmDelete),
            delete(relationships::delete),
        ),
        ApiRoute::new(
            Method::POST,
            "/imports",
            P(Perm::CrmWrite),
            post(imports::upload),
        ),
        ApiRoute::new(
            Method::GET,
            "/imports",
            P(Perm::CrmRead),
            get(imports::list),
        ),
        ApiRoute::new(
            Method::GET,
            "/imports/{id}",
            P(Perm::CrmRead),
            get(imports::get),
        ),
        ApiRoute::new(
            Method::PUT,
            "/imports/{id}/mapping",
            P(Perm::CrmWrite),
            put(imports::set_mapping),
        ),
        ApiRoute::new(
            Method::POST,
            "/imports/{id}/dry-run",
            P(Perm::CrmWrite),
            post(imports::dry_run),
        ),
        ApiRoute::new(
            Method::POST,
            "/imports/{id}/start",
            P(Perm::CrmWrite),
            post(imports::start),
        ),
        ApiRoute::new(
            Method::GET,
            "/imports/{id}/errors.csv",
            P(Perm::CrmRead),
            get(imports::errors_csv),
        ),
        ApiRoute::new(
            Method::GET,
            "/audit-log",
            P(Perm::AuditRead),
            get(audit::list),
        ),
        ApiRoute::new(Method::GET, "/usage", P(Perm::UsageRead), get(usage::usage)),
        ApiRoute::new(
            Method::GET,
            "/usage/report",
            P(Perm::UsageRead),
            get(usage::report),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/usage",
            P(Perm::TenantsManage),
            get(usage::admin_report),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/pipeline-conversion",
            P(Perm::CrmRead),
            get(analytics::pipeline_conversion),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/revenue-won",
            P(Perm::BillingRead),
            get(analytics::revenue_won),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/payments",
            P(Perm::BillingRead),
            get(analytics::payments_collected),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/activities",
            P(Perm::CrmRead),
            get(analytics::activities),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/targets",
            P(Perm::CrmRead),
            get(analytics::targets),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/messages",
            P(Perm::BillingRead),
            get(analytics::messages),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/prospects.csv",
            P(Perm::CrmRead),
            get(exports::prospects),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/relationships.csv",
            P(Perm::CrmRead),
            get(exports::relationships),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/deals.csv",
            P(Perm::CrmRead),
            get(exports::deals),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/tickets.csv",
            P(Perm::CrmRead),
            get(exports::tickets),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/activities.csv",
            P(Perm::CrmRead),
            get(exports::activities),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/organization",
            P(Perm::OrgUpdate),
            get(exports::organization),
        ),
        ApiRoute::new(
            Method::POST,
            "/tickets",
            P(Perm::CrmWrite),
            post(tickets::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/tickets",
            P(Perm::CrmRead),
            get(tickets::list),
        ),
        ApiRoute::new(
            Method::GET,
            "/tickets/{id}",
            P(Perm::CrmRead),
            get(tickets::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/tickets/{id}",
            P(Perm::CrmWrite),
            patch(tickets::update),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/tickets/{id}",
            P(Perm::CrmDelete),
            delete(tickets::delete),
        ),
        ApiRoute::new(
            Method::POST,
            "/tickets/{id}/comments",
            P(Perm::CrmWrite),
            post(tickets::comment),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/tickets/{id}/comments/{comment_id}",
            P(Perm::CrmWrite),
            patch(tickets::update_comment),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/tickets/{id}/comments/{comment_id}",
            P(Perm::CrmDelete),
            delete(tickets::delete_comment),
        ),
        ApiRoute::new(
            Method::POST,
            "/activities",
            P(Perm::CrmWrite),
            post(activities::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/activities",
            P(Perm::CrmRead),
            get(activities::list),
        ),
        ApiRoute::new(
            Method::GET,
            "/activities/{id}",
            P(Perm::CrmRead),
            get(activities::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/activities/{id}",
            P(Perm::CrmWrite),
            patch(activities::update),
        ),
        ApiRoute::new(
            Method::POST,
            "/activities/{id}/complete",
            P(Perm::CrmWrite),
            post(activities::complete),
        ),
        ApiRoute::new(
            Method::POST,
            "/activities/{id}/reopen",
            P(Perm::CrmWrite),
            post(activities::reopen),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/activities/{id}",
            P(Perm::CrmDelete),
            delete(activities::delete),
        ),
        ApiRoute::new(
            Method::POST,
            "/targets",
            P(Perm::CrmAssign),
            post(targets::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/targets",
            P(Perm::CrmRead),
            get(targets::list),
        ),
        ApiRoute::new(
            Method::GET,
            "/targets/{id}",
            P(Perm::CrmRead),
            get(targets::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/targets/{id}",
            P(Perm::CrmAssign),
            patch(targets::update),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/targets/{id}",
            P(Perm::CrmAssign),
            delete(targets::delete),
        ),
        ApiRoute::new(
            Method::GET,
            "/pipelines",
            P(Perm::CrmRead),
            get(pipelines::list),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines",
            P(Perm::OrgUpdate),
            post(pipelines::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/pipelines/{id}",
            P(Perm::CrmRead),
            get(pipelines::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/pipelines/{id}",
            P(Perm::OrgUpdate),
            patch(pipelines::update),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines/{id}/archive",
            P(Perm::OrgUpdate),
            post(pipelines::archive),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines/{id}/stages",
            P(Perm::OrgUpdate),
            post(pipelines::add_stage),
        ),
        ApiRoute::new(
            Method::PUT,
            "/pipelines/{id}/stages/order",
            P(Perm::OrgUpdate),
            put(pipelines::reorder_stages),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/pipelines/{id}/stages/{stage_id}",
            P(Perm::OrgUpdate),
            patch(pipelines::update_stage),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines/{id}/stages/{stage_id}/archive",
            P(Perm::OrgUpdate),
            post(pipelines::archive_stage),
        ),
        ApiRoute::new(
            Method::GET,
            "/pipelines/{id}/board",
            P(Perm::CrmRead),
            get(pipelines::board),
        ),
        ApiRoute::new(Method::GET, "/deals", P(Perm::CrmRead), get(deals::list)),
        ApiRoute::new(
            Method::POST,
            "/deals",
            P(Perm::CrmWrite),
            post(deals::create),
        ),
        ApiRoute::new(
            Method::GET,
            "/deals/{id}",
            P(Perm::CrmRead),
            get(deals::get),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/deals/{id}",
            P(Perm::CrmWrite),
            patch(deals::update),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/deals/{id}",
            P(Perm::CrmDelete),
            delete(deals::delete),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/move",
            P(Perm::CrmWrite),
            post(deals::move_deal),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/won",
            P(Perm::CrmWrite),
            post(deals::won),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/lost",
            P(Perm::CrmWrite),
            post(deals::lost),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/reopen",
            P(Perm::CrmWrite),
            post(deals::reopen),
        ),
        ApiRoute::new(
            Method::GET,
            "/billing/subscription",
            P(Perm::BillingRead),
            get(billing::subscription),
        ),
        ApiRoute::new(
            Method::POST,
            "/billing/subscription",
            P(Perm::BillingManage),
            post(payments::subscribe),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/plans",
            P(Perm::TenantsManage),
            get(billing::list_plans),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/plans",
            P(Perm::TenantsManage),
            post(billing::create_plan),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/admin/plans/{code}",
            P(Perm::TenantsManage),
            patch(billing::update_plan),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/organizations",
            P(Perm::TenantsManage),
            get(admin::list),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations",
            P(Perm::TenantsManage),
            post(admin::create),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/suspend",
            P(Perm::TenantsManage),
            post(admin::suspend),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/reactivate",
            P(Perm::TenantsManage),
            post(admin::reactivate),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/wallet/adjustments",
            P(Perm::TenantsManage),
            post(wallet::adjust),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/payments/{payment_id}/review",
            P(Perm::TenantsManage),
            post(payments::review),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/admin/organizations/{id}/wallet",
            P(Perm::TenantsManage),
            patch(wallet::set_credit_limit),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/payments/{payment_id}/status-query",
            P(Perm::TenantsManage),
            post(payments::admin_status_query),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/payments/{payment_id}/reversal",
            P(Perm::TenantsManage),
            post(payments::admin_reversal),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/mpesa/callbacks",
            P(Perm::TenantsManage),
            get(mpesa::admin_callbacks),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/mpesa/c2b/register",
            P(Perm::TenantsManage),
            post(mpesa::admin_register_c2b),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/numbers",
            P(Perm::CrmRead),
            get(whatsapp::list_numbers),
        ),
        ApiRoute::new(
            Method::POST,
            "/whatsapp/numbers",
            P(Perm::CredentialsManage),
            post(whatsapp::connect_number),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/numbers/{id}",
            P(Perm::CrmRead),
            get(whatsapp::get_number),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/whatsapp/numbers/{id}",
            P(Perm::CredentialsManage),
            patch(whatsapp::update_number),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/whatsapp/numbers/{id}",
            P(Perm::CredentialsManage),
            delete(whatsapp::disconnect_number),
        ),
        ApiRoute::new(
            Method::POST,
            "/whatsapp/messages",
            P(Perm::MessagesSend),
            post(whatsapp::send),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/messages/{id}",
            P(Perm::CrmRead),
            get(whatsapp::get_message),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/conversations",
            P(Perm::CrmRead),
            get(whatsapp::conversations),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/conversations/{contact}",
            P(Perm::CrmRead),
            get(whatsapp::conversation),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/conversations/{contact}/messages",
            P(Perm::CrmRead),
            get(whatsapp::conversation_messages),
        ),
        ApiRoute::new(
            Method::POST,
            "/whatsapp/conversations/{contact}/read",
            P(Perm::MessagesSend),
            post(whatsapp::mark_read),
        ),
        ApiRoute::new(
            Method::GET,
            "/chat/rooms",
            P(Perm::ChatUse),
            get(chat::rooms),
        ),
        ApiRoute::new(
            Method::GET,
            "/chat/rooms/{room}/messages",
            P(Perm::ChatUse),
            get(chat::messages),
        ),
        ApiRoute::new(
            Method::PUT,
            "/chat/rooms/{room}/read",
            P(Perm::ChatUse),
            put(chat::mark_read),
        ),
        ApiRoute::new(
            Method::GET,
            "/notifications",
            Authenticated,
            get(notifications::list),
        ),
        ApiRoute::new(
            Method::POST,
            "/notifications/{id}/read",
            Authenticated,
            post(notifications::read),
        ),
        ApiRoute::new(
            Method::POST,
            "/notifications/read-all",
            Authenticated,
            post(notifications::read_all),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/rules",
            P(Perm::CrmRead),
            get(automation::list_rules),
        ),
        ApiRoute::new(
            Method::POST,
            "/automation/rules",
            P(Perm::OrgUpdate),
            post(automation::create_rule),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/rules/{id}",
            P(Perm::CrmRead),
            get(automation::get_rule),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/automation/rules/{id}",
            P(Perm::OrgUpdate),
            patch(automation::update_rule),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/automation/rules/{id}",
            P(Perm::OrgUpdate),
            delete(automation::delete_rule),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/rules/{id}/runs",
            P(Perm::CrmRead),
            get(automation::list_runs),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/runs/{id}",
            P(Perm::CrmRead),
            get(automation::get_run),
        ),
        ApiRoute::new(
            Method::GET,
            "/webhook-endpoints",
            P(Perm::WebhooksManage),
            get(webhooks::list_endpoints),
        ),
        ApiRoute::new(
            Method::POST,
            "/webhook-endpoints",
            P(Perm::WebhooksManage),
            post(webhooks::create_endpoint),
        ),
        ApiRoute::new(
            Method::GET,
            "/webhook-endpoints/{id}",
            P(Perm::WebhooksManage),
            get(webhooks::get_endpoint),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/webhook-endpoints/{id}",
            P(Perm::WebhooksManage),
            patch(webhooks::update_endpoint),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/webhook-endpoints/{id}",
            P(Perm::WebhooksManage),
            delete(webhooks::delete_endpoint),
        ),
        ApiRoute::new(
            Method::POST,
            "/webhook-endpoints/{id}/rotate-secret",
            P(Perm::WebhooksManage),
            post(webhooks::rotate_secret),
        ),
        ApiRoute::new(
            Method::POST,
            "/webhook-endpoints/{id}/test",
            P(Perm::WebhooksManage),
            post(webhooks::send_test),
        ),
        ApiRoute::new(
            Method::GET,
            "/webhook-endpoints/{id}/deliveries",
            P(Perm::WebhooksManage),
            get(webhooks::list_deliveries),
        ),
        ApiRoute::new(
            Method::GET,
            "/webhook-deliveries/{id}",
            P(Perm::WebhooksManage),
            get(webhooks::get_delivery),
        ),
        ApiRoute::new(
            Method::POST,
            "/webhook-deliveries/{id}/replay",
            P(Perm::WebhooksManage),
            post(webhooks::replay),
        ),
    ]
}

/// The complete application: [`routes`] with state and every layer applied.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// [`app`] with extra routes merged in before the layers are applied.
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = state.config.clone();
    let resolver = state.resolver.clone();
    with_layers(
        routes(&state)
            .merge(extra)
            .layer(Extension(resolver))
            .with_state(state),
        config.request_timeout,
        config.max_body_bytes,
    )
}

/// Applies the layers every Edge router needs: body limit (`max_body_bytes`, except for
/// the CSV upload of `POST /api/v1/imports`, see [`middleware::limit_body`]), timeout, panic catching,
/// JSON error envelopes, request ids and request logging.
pub fn with_layers(router: Router, timeout: std::time::Duration, max_body_bytes: usize) -> Router {
    // Layers run outside-in from the last one added.
    router
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            middleware::BodyLimits {
                default: max_body_bytes,
                uploads: crate::imports::MAX_FILE_BYTES.max(max_body_bytes),
            },
            middleware::limit_body,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(axum::middleware::from_fn(middleware::request_id))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::no_route(method.as_str(), uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspended_organization_may_read_pay_and_lock_doors_but_not_use_paid_features() {
        let open = [
            (Method::GET, "/prospects"),
            (Method::GET, "/wallet/entries"),
            (Method::HEAD, "/deals/{id}"),
            (Method::POST, "/auth/logout"),
            (Method::POST, "/auth/switch"),
            (Method::POST, "/me/password"),
            (Method::POST, "/billing/subscription"),
            (Method::POST, "/wallet/top-ups"),
            (Method::POST, "/payments/{id}/query"),
            (Method::PUT, "/mpesa/settings"),
            (Method::POST, "/mpesa/settings/test"),
            (Method::DELETE, "/api-keys/{id}"),
            (Method::POST, "/users/{id}/deactivate"),
        ];
        for (method, path) in open {
            assert!(available_when_suspended(&method, path), "{method} {path}");
        }
        let paid = [
            (Method::POST, "/prospects"),
            (Method::PATCH, "/deals/{id}"),
            (Method::DELETE, "/tickets/{id}"),
            (Method::POST, "/api-keys"),
            (Method::POST, "/users/invitations"),
            (Method::POST, "/users/{id}/reactivate"),
            (Method::PATCH, "/organization"),
            (Method::PATCH, "/wallet"),
            (Method::POST, "/mpesa/collections"),
            (Method::POST, "/billingsomething"),
            (Method::POST, "/paymentsx"),
        ];
        for (method, path) in paid {
            assert!(!available_when_suspended(&method, path), "{method} {path}");
        }
    }
}
