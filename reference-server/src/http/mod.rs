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
pub mod openapi;
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
use openapi::Doc;

/// The API routes, without the cross-cutting layers (see [`with_layers`]), with the
/// OpenAPI document at `/openapi.json` and its UI at `/docs` (see [`openapi`]).
///
/// Teams embedding the server can merge this into their own router.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api_v1(state))
        .nest("/callbacks", callbacks::routes())
        .nest("/webhooks", whatsapp::webhook_routes())
        .merge(openapi::routes())
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
    /// Its documentation in the OpenAPI document (see [`openapi::Doc`]).
    pub doc: Option<Doc>,
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
            doc: None,
            handler,
        }
    }

    fn doc(mut self, doc: Doc) -> Self {
        self.doc = Some(doc);
        self
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
    use crate::automation::{RuleInput, RuleView, RunView};
    use crate::billing::plans::{NewPlan, PlanPatch, PlanView};
    use crate::chat::{MessageView as ChatMessageView, ReadPosition};
    use crate::crm::activities::{ActivityPatch, ActivityView, NewActivity};
    use crate::crm::deals::{
        BoardQuery, BoardView, CloseDeal, DealPatch, DealView, MoveDeal, NewDeal,
    };
    use crate::crm::pipelines::{
        ArchiveStage, NewPipeline, NewStage, PipelinePatch, PipelineView, StageOrder, StagePatch,
    };
    use crate::crm::prospects::{Conversion, ProspectInput, ProspectView};
    use crate::crm::relationships::{RelationshipInput, RelationshipView};
    use crate::crm::targets::{NewTarget, TargetPatch, TargetView};
    use crate::crm::tickets::{
        CommentInput, CommentView, NewTicket, TicketDetail, TicketPatch, TicketView,
    };
    use crate::http::admin::ListQuery as AdminListQuery;
    use crate::http::analytics::PeriodQuery;
    use crate::http::audit::{AuditEntryView, AuditQuery};
    use crate::http::auth::{
        LoginBody, PasswordBody, RefreshBody, SessionBody, SignupBody, SwitchBody,
    };
    use crate::http::automation::{Rules, RunsQuery};
    use crate::http::billing::SubscriptionView;
    use crate::http::chat::{HistoryQuery, MarkRead, Rooms};
    use crate::http::imports::{ListQuery as ImportsListQuery, UploadQuery};
    use crate::http::mpesa::{CallbacksQuery, MpesaSettings};
    use crate::http::notifications::{ListQuery as NotificationsListQuery, ReadAll};
    use crate::http::payments::{
        Collection, ListQuery as PaymentsListQuery, ReversalInput, ReviewDecision,
        StatusQueryInput, Subscribe, TopUp,
    };
    use crate::http::pipelines::ListQuery as PipelinesListQuery;
    use crate::http::usage::{ReportQuery, UsageQuery};
    use crate::http::views::OrganizationView;
    use crate::http::wallet::{Adjustment, CreditLimit, EntriesQuery, WalletPatch};
    use crate::http::webhooks::DeliveriesQuery;
    use crate::http::whatsapp::PageQuery;
    use crate::identity::api_keys::{ApiKeyView, CreateApiKey};
    use crate::identity::members::{Accept, Invite, MemberPatch, MemberView};
    use crate::identity::operator::NewOrganization;
    use crate::identity::organization::OrganizationPatch;
    use crate::imports::{DryRun, ImportView, MappingInput, Uploaded};
    use crate::notifications::{NotificationList, NotificationView};
    use crate::organization_settings::OrganizationSettings;
    use crate::payments::accounts::{SettingsInput, SettingsView};
    use crate::payments::c2b::{C2bRegistered, RegisterInput};
    use crate::payments::inbox::StoredCallback;
    use crate::payments::requests::MpesaRequest;
    use crate::payments::tokens::CallbackUrls;
    use crate::payments::{Payment, PaymentDetail};
    use crate::webhooks::endpoints::{
        CreateEndpoint, EndpointPatch, EndpointView, EndpointWithSecret,
    };
    use crate::webhooks::log::{DeliveryDetail, DeliveryView};
    use crate::whatsapp::conversations::{ConversationView, MessageView as WhatsappMessageView};
    use crate::whatsapp::numbers::{ConnectNumber, NumberPatch, NumberView};
    use crate::whatsapp::send::SendRequest;
    use Access::{Authenticated, Permission as P, Public};
    use Permission as Perm;
    use edge_core::{Balance, Entry};
    use openapi::shapes::{
        ActivitiesReport, AdminUsage, ApiKeyCreated, InvitationCreated, Me, MessagesReport,
        OrganizationCreated, PaymentsCollected, PipelineConversion, RevenueWon, TargetsReport,
        Usage, UsageReport, WalletAdjusted,
    };
    vec![
        ApiRoute::new(Method::POST, "/auth/signup", Public, post(auth::signup)).doc(
            Doc::new(
                "Auth",
                "Sign up: create an organization and its first admin, and log in",
            )
            .body::<SignupBody>()
            .created::<SessionBody>(),
        ),
        ApiRoute::new(Method::POST, "/auth/login", Public, post(auth::login)).doc(
            Doc::new(
                "Auth",
                "Log in (with several memberships, `organization_id` chooses one; 409 lists them)",
            )
            .body::<LoginBody>()
            .ok::<SessionBody>(),
        ),
        ApiRoute::new(Method::POST, "/auth/refresh", Public, post(auth::refresh)).doc(
            Doc::new(
                "Auth",
                "Exchange a refresh token for a new pair (a reused token ends its session)",
            )
            .body::<RefreshBody>()
            .ok::<SessionBody>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/invitations/accept",
            Public,
            post(organization::accept_invitation),
        )
        .doc(
            Doc::new(
                "Members",
                "Accept an invitation: join the organization and log in there",
            )
            .body::<Accept>()
            .created::<SessionBody>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/auth/logout",
            Authenticated,
            post(auth::logout),
        )
        .doc(Doc::new("Auth", "End the current session").no_content()),
        ApiRoute::new(
            Method::POST,
            "/auth/switch",
            Authenticated,
            post(auth::switch),
        )
        .doc(
            Doc::new(
                "Auth",
                "End the current session and start one in another of the user's organizations",
            )
            .body::<SwitchBody>()
            .ok::<SessionBody>(),
        ),
        ApiRoute::new(Method::GET, "/me", Authenticated, get(auth::me)).doc(
            Doc::new(
                "Auth",
                "The caller, the current organization and role, and every membership",
            )
            .ok::<Me>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/me/password",
            Authenticated,
            post(auth::change_password),
        )
        .doc(
            Doc::new(
                "Auth",
                "Change the caller's password (every other session of theirs ends)",
            )
            .body::<PasswordBody>()
            .no_content(),
        ),
        ApiRoute::new(
            Method::GET,
            "/organization",
            P(Perm::OrgRead),
            get(organization::get),
        )
        .doc(Doc::new("Organization", "The organization").ok::<OrganizationView>()),
        ApiRoute::new(
            Method::PATCH,
            "/organization",
            P(Perm::OrgUpdate),
            patch(organization::update),
        )
        .doc(
            Doc::new(
                "Organization",
                "Update name, currency, country, single-session switch or branding",
            )
            .body::<OrganizationPatch>()
            .ok::<OrganizationView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/organization/settings",
            P(Perm::OrgRead),
            get(organization::settings),
        )
        .doc(
            Doc::new("Organization", "The organization's vocabulary (settings)")
                .ok::<OrganizationSettings>(),
        ),
        ApiRoute::new(
            Method::PUT,
            "/organization/settings",
            P(Perm::OrgUpdate),
            put(organization::replace_settings),
        )
        .doc(
            Doc::new(
                "Organization",
                "Replace the organization's vocabulary (every list is validated)",
            )
            .body::<OrganizationSettings>()
            .ok::<OrganizationSettings>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/api-keys",
            P(Perm::ApiKeysManage),
            get(organization::list_api_keys),
        )
        .doc(
            Doc::new(
                "API keys",
                "Every API key of the organization (never the keys themselves)",
            )
            .items::<ApiKeyView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/api-keys",
            P(Perm::ApiKeysManage),
            post(organization::create_api_key),
        )
        .doc(
            Doc::new("API keys", "Create an API key (the key is shown this once)")
                .body::<CreateApiKey>()
                .created::<ApiKeyCreated>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/api-keys/{id}",
            P(Perm::ApiKeysManage),
            delete(organization::revoke_api_key),
        )
        .doc(Doc::new("API keys", "Revoke an API key at once").no_content()),
        ApiRoute::new(
            Method::GET,
            "/users",
            P(Perm::MembersRead),
            get(organization::list_members),
        )
        .doc(Doc::new("Members", "The organization's members").items::<MemberView>()),
        ApiRoute::new(
            Method::POST,
            "/users/invitations",
            P(Perm::MembersManage),
            post(organization::invite),
        )
        .doc(
            Doc::new("Members", "Invite a member (the token is shown this once)")
                .body::<Invite>()
                .created::<InvitationCreated>(),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/users/{id}",
            P(Perm::MembersManage),
            patch(organization::change_role),
        )
        .doc(
            Doc::new("Members", "Change a member's role")
                .body::<MemberPatch>()
                .ok::<MemberView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/users/{id}/deactivate",
            P(Perm::MembersManage),
            post(organization::deactivate),
        )
        .doc(
            Doc::new(
                "Members",
                "Deactivate a member (their sessions end at once)",
            )
            .ok::<MemberView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/users/{id}/reactivate",
            P(Perm::MembersManage),
            post(organization::reactivate),
        )
        .doc(Doc::new("Members", "Reactivate a member").ok::<MemberView>()),
        ApiRoute::new(
            Method::GET,
            "/wallet",
            P(Perm::BillingRead),
            get(wallet::balance),
        )
        .doc(Doc::new("Wallet", "Posted, held and available balances").ok::<Balance>()),
        ApiRoute::new(
            Method::PATCH,
            "/wallet",
            P(Perm::BillingManage),
            patch(wallet::update),
        )
        .doc(
            Doc::new("Wallet", "Set the low-balance threshold")
                .body::<WalletPatch>()
                .ok::<Balance>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/wallet/entries",
            P(Perm::BillingRead),
            get(wallet::entries),
        )
        .doc(
            Doc::new(
                "Wallet",
                "The ledger entries of the organization's transfers, oldest first",
            )
            .query::<EntriesQuery>()
            .page::<Entry>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/wallet/top-ups",
            P(Perm::BillingManage),
            post(payments::top_up),
        )
        .doc(
            Doc::new(
                "Payments",
                "Top up the wallet by M-Pesa STK push (200 for a replayed Idempotency-Key)",
            )
            .body::<TopUp>()
            .created::<Payment>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/collections",
            P(Perm::CrmWrite),
            post(payments::collect),
        )
        .doc(
            Doc::new(
                "Payments",
                "Ask a customer to pay the organization's own shortcode by STK push",
            )
            .body::<Collection>()
            .created::<Payment>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/payments",
            P(Perm::BillingRead),
            get(payments::list),
        )
        .doc(
            Doc::new("Payments", "Payments, newest first, with filters")
                .query::<PaymentsListQuery>()
                .page::<Payment>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/payments/{id}",
            P(Perm::BillingRead),
            get(payments::get),
        )
        .doc(
            Doc::new(
                "Payments",
                "A payment with its history and requests (for polling)",
            )
            .ok::<PaymentDetail>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/payments/{id}/status-query",
            P(Perm::BillingManage),
            post(payments::status_query),
        )
        .doc(
            Doc::new("Payments", "Ask M-Pesa about a collection's status")
                .optional_body::<StatusQueryInput>()
                .accepted::<MpesaRequest>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/payments/{id}/reversal",
            P(Perm::BillingManage),
            post(payments::reversal),
        )
        .doc(
            Doc::new("Payments", "Ask M-Pesa to reverse a succeeded collection")
                .body::<ReversalInput>()
                .accepted::<MpesaRequest>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/mpesa/settings",
            P(Perm::CredentialsManage),
            get(mpesa::get),
        )
        .doc(
            Doc::new(
                "M-Pesa",
                "The organization's M-Pesa account (secrets never shown) and callback URLs",
            )
            .ok::<MpesaSettings>(),
        ),
        ApiRoute::new(
            Method::PUT,
            "/mpesa/settings",
            P(Perm::CredentialsManage),
            put(mpesa::put),
        )
        .doc(
            Doc::new(
                "M-Pesa",
                "Set the M-Pesa account (secrets left out keep their stored values)",
            )
            .body::<SettingsInput>()
            .ok::<MpesaSettings>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/settings/test",
            P(Perm::CredentialsManage),
            post(mpesa::test),
        )
        .doc(
            Doc::new(
                "M-Pesa",
                "Test the stored credentials by fetching a Daraja token",
            )
            .ok::<SettingsView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/callback-token/rotate",
            P(Perm::CredentialsManage),
            post(mpesa::rotate_token),
        )
        .doc(
            Doc::new(
                "M-Pesa",
                "Rotate the callback token: new callback URLs (the old ones work for 24 hours)",
            )
            .ok::<CallbackUrls>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/mpesa/c2b/register",
            P(Perm::CredentialsManage),
            post(mpesa::register_c2b),
        )
        .doc(
            Doc::new(
                "M-Pesa",
                "Register the organization's C2B validation and confirmation URLs with Daraja",
            )
            .optional_body::<RegisterInput>()
            .ok::<C2bRegistered>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/prospects",
            P(Perm::CrmRead),
            get(prospects::list),
        )
        .doc(
            Doc::new(
                "Prospects",
                "Prospects: filters, search, sort and keyset pages",
            )
            .list(&crate::crm::prospects::LIST)
            .page::<ProspectView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/prospects",
            P(Perm::CrmWrite),
            post(prospects::create),
        )
        .doc(
            Doc::new("Prospects", "Create a prospect")
                .body::<ProspectInput>()
                .created::<ProspectView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/prospects/{id}",
            P(Perm::CrmRead),
            get(prospects::get),
        )
        .doc(Doc::new("Prospects", "A prospect").ok::<ProspectView>()),
        ApiRoute::new(
            Method::PATCH,
            "/prospects/{id}",
            P(Perm::CrmWrite),
            patch(prospects::update),
        )
        .doc(
            Doc::new("Prospects", "Update a prospect")
                .body::<ProspectInput>()
                .ok::<ProspectView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/prospects/{id}",
            P(Perm::CrmDelete),
            delete(prospects::delete),
        )
        .doc(Doc::new("Prospects", "Delete a prospect").no_content()),
        ApiRoute::new(
            Method::POST,
            "/prospects/{id}/convert",
            P(Perm::CrmWrite),
            post(prospects::convert),
        )
        .doc(
            Doc::new("Prospects", "Convert a prospect into a relationship")
                .body::<Conversion>()
                .created::<RelationshipView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/relationships",
            P(Perm::CrmRead),
            get(relationships::list),
        )
        .doc(
            Doc::new(
                "Relationships",
                "Relationships (customers): filters, search, sort and keyset pages",
            )
            .list(&crate::crm::relationships::LIST)
            .page::<RelationshipView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/relationships",
            P(Perm::CrmWrite),
            post(relationships::create),
        )
        .doc(
            Doc::new("Relationships", "Create a relationship")
                .body::<RelationshipInput>()
                .created::<RelationshipView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/relationships/{id}",
            P(Perm::CrmRead),
            get(relationships::get),
        )
        .doc(Doc::new("Relationships", "A relationship").ok::<RelationshipView>()),
        ApiRoute::new(
            Method::PATCH,
            "/relationships/{id}",
            P(Perm::CrmWrite),
            patch(relationships::update),
        )
        .doc(
            Doc::new("Relationships", "Update a relationship")
                .body::<RelationshipInput>()
                .ok::<RelationshipView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/relationships/{id}",
            P(Perm::CrmDelete),
            delete(relationships::delete),
        )
        .doc(Doc::new("Relationships", "Delete a relationship").no_content()),
        ApiRoute::new(
            Method::POST,
            "/imports",
            P(Perm::CrmWrite),
            post(imports::upload),
        )
        .doc(
            Doc::new(
                "Imports",
                "Upload a CSV file (`text/csv`) to import prospects or relationships",
            )
            .query::<UploadQuery>()
            .csv_body()
            .created::<Uploaded>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/imports",
            P(Perm::CrmRead),
            get(imports::list),
        )
        .doc(
            Doc::new("Imports", "Imports, newest first")
                .query::<ImportsListQuery>()
                .page::<ImportView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/imports/{id}",
            P(Perm::CrmRead),
            get(imports::get),
        )
        .doc(Doc::new("Imports", "An import's status and progress").ok::<ImportView>()),
        ApiRoute::new(
            Method::PUT,
            "/imports/{id}/mapping",
            P(Perm::CrmWrite),
            put(imports::set_mapping),
        )
        .doc(
            Doc::new("Imports", "Set an import's column mapping")
                .body::<MappingInput>()
                .ok::<ImportView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/imports/{id}/dry-run",
            P(Perm::CrmWrite),
            post(imports::dry_run),
        )
        .doc(Doc::new("Imports", "Check every row of an import, writing nothing").ok::<DryRun>()),
        ApiRoute::new(
            Method::POST,
            "/imports/{id}/start",
            P(Perm::CrmWrite),
            post(imports::start),
        )
        .doc(Doc::new("Imports", "Queue an import").accepted::<ImportView>()),
        ApiRoute::new(
            Method::GET,
            "/imports/{id}/errors.csv",
            P(Perm::CrmRead),
            get(imports::errors_csv),
        )
        .doc(
            Doc::new(
                "Imports",
                "An import's problems as CSV: one line per problem",
            )
            .csv(),
        ),
        ApiRoute::new(
            Method::GET,
            "/audit-log",
            P(Perm::AuditRead),
            get(audit::list),
        )
        .doc(
            Doc::new("Audit", "Audit entries, newest first")
                .query::<AuditQuery>()
                .page::<AuditEntryView>(),
        ),
        ApiRoute::new(Method::GET, "/usage", P(Perm::UsageRead), get(usage::usage)).doc(
            Doc::new(
                "Usage",
                "The organization's usage: every metric per period, and its plan's limits",
            )
            .query::<UsageQuery>()
            .ok::<Usage>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/usage/report",
            P(Perm::UsageRead),
            get(usage::report),
        )
        .doc(
            Doc::new("Usage", "The organization's usage report for a month")
                .query::<ReportQuery>()
                .ok::<UsageReport>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/usage",
            P(Perm::TenantsManage),
            get(usage::admin_report),
        )
        .doc(
            Doc::new(
                "Admin",
                "Every organization's usage report for a month, a page of organizations at a time",
            )
            .query::<ReportQuery>()
            .ok::<AdminUsage>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/pipeline-conversion",
            P(Perm::CrmRead),
            get(analytics::pipeline_conversion),
        )
        .doc(
            Doc::new(
                "Analytics",
                "Per pipeline and stage: deals entered, moved on, won and lost",
            )
            .query::<PeriodQuery>()
            .ok::<PipelineConversion>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/revenue-won",
            P(Perm::BillingRead),
            get(analytics::revenue_won),
        )
        .doc(
            Doc::new("Analytics", "Deals won per month and currency")
                .query::<PeriodQuery>()
                .ok::<RevenueWon>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/payments",
            P(Perm::BillingRead),
            get(analytics::payments_collected),
        )
        .doc(
            Doc::new(
                "Analytics",
                "Succeeded payments per month, currency and purpose",
            )
            .query::<PeriodQuery>()
            .ok::<PaymentsCollected>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/activities",
            P(Perm::CrmRead),
            get(analytics::activities),
        )
        .doc(
            Doc::new(
                "Analytics",
                "Activities created and completed per member and kind",
            )
            .query::<PeriodQuery>()
            .ok::<ActivitiesReport>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/targets",
            P(Perm::CrmRead),
            get(analytics::targets),
        )
        .doc(
            Doc::new(
                "Analytics",
                "The targets overlapping the period, with progress",
            )
            .query::<PeriodQuery>()
            .ok::<TargetsReport>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/analytics/messages",
            P(Perm::BillingRead),
            get(analytics::messages),
        )
        .doc(
            Doc::new(
                "Analytics",
                "WhatsApp volume by direction and status, and fees spent",
            )
            .query::<PeriodQuery>()
            .ok::<MessagesReport>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/prospects.csv",
            P(Perm::CrmRead),
            get(exports::prospects),
        )
        .doc(
            Doc::new(
                "Exports",
                "Every prospect as CSV (streamed; takes the list's filters)",
            )
            .list_filters(&crate::crm::prospects::LIST)
            .csv(),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/relationships.csv",
            P(Perm::CrmRead),
            get(exports::relationships),
        )
        .doc(
            Doc::new(
                "Exports",
                "Every relationship as CSV (streamed; takes the list's filters)",
            )
            .list_filters(&crate::crm::relationships::LIST)
            .csv(),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/deals.csv",
            P(Perm::CrmRead),
            get(exports::deals),
        )
        .doc(
            Doc::new(
                "Exports",
                "Every deal as CSV (streamed; takes the list's filters)",
            )
            .list_filters(&crate::crm::deals::LIST)
            .csv(),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/tickets.csv",
            P(Perm::CrmRead),
            get(exports::tickets),
        )
        .doc(
            Doc::new(
                "Exports",
                "Every ticket as CSV (streamed; takes the list's filters)",
            )
            .list_filters(&crate::crm::tickets::LIST)
            .csv(),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/activities.csv",
            P(Perm::CrmRead),
            get(exports::activities),
        )
        .doc(
            Doc::new(
                "Exports",
                "Every activity as CSV (streamed; takes the list's filters)",
            )
            .list_filters(&crate::crm::activities::LIST)
            .csv(),
        ),
        ApiRoute::new(
            Method::GET,
            "/exports/organization",
            P(Perm::OrgUpdate),
            get(exports::organization),
        )
        .doc(Doc::new("Exports", "Every row the organization owns, as NDJSON").ndjson()),
        ApiRoute::new(
            Method::POST,
            "/tickets",
            P(Perm::CrmWrite),
            post(tickets::create),
        )
        .doc(
            Doc::new("Tickets", "Create a ticket")
                .body::<NewTicket>()
                .created::<TicketView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/tickets",
            P(Perm::CrmRead),
            get(tickets::list),
        )
        .doc(
            Doc::new("Tickets", "Tickets: filters, search, sort and keyset pages")
                .list(&crate::crm::tickets::LIST)
                .page::<TicketView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/tickets/{id}",
            P(Perm::CrmRead),
            get(tickets::get),
        )
        .doc(Doc::new("Tickets", "A ticket with its comments").ok::<TicketDetail>()),
        ApiRoute::new(
            Method::PATCH,
            "/tickets/{id}",
            P(Perm::CrmWrite),
            patch(tickets::update),
        )
        .doc(
            Doc::new("Tickets", "Update a ticket's fields, status or assignee")
                .body::<TicketPatch>()
                .ok::<TicketView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/tickets/{id}",
            P(Perm::CrmDelete),
            delete(tickets::delete),
        )
        .doc(Doc::new("Tickets", "Delete a ticket").no_content()),
        ApiRoute::new(
            Method::POST,
            "/tickets/{id}/comments",
            P(Perm::CrmWrite),
            post(tickets::comment),
        )
        .doc(
            Doc::new("Tickets", "Comment on a ticket")
                .body::<CommentInput>()
                .created::<CommentView>(),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/tickets/{id}/comments/{comment_id}",
            P(Perm::CrmWrite),
            patch(tickets::update_comment),
        )
        .doc(
            Doc::new("Tickets", "Edit a comment (its author only)")
                .body::<CommentInput>()
                .ok::<CommentView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/tickets/{id}/comments/{comment_id}",
            P(Perm::CrmDelete),
            delete(tickets::delete_comment),
        )
        .doc(Doc::new("Tickets", "Delete a comment").no_content()),
        ApiRoute::new(
            Method::POST,
            "/activities",
            P(Perm::CrmWrite),
            post(activities::create),
        )
        .doc(
            Doc::new("Activities", "Create an activity")
                .body::<NewActivity>()
                .created::<ActivityView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/activities",
            P(Perm::CrmRead),
            get(activities::list),
        )
        .doc(
            Doc::new("Activities", "Activities: filters, sort and keyset pages")
                .list(&crate::crm::activities::LIST)
                .page::<ActivityView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/activities/{id}",
            P(Perm::CrmRead),
            get(activities::get),
        )
        .doc(Doc::new("Activities", "An activity").ok::<ActivityView>()),
        ApiRoute::new(
            Method::PATCH,
            "/activities/{id}",
            P(Perm::CrmWrite),
            patch(activities::update),
        )
        .doc(
            Doc::new("Activities", "Update an activity")
                .body::<ActivityPatch>()
                .ok::<ActivityView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/activities/{id}/complete",
            P(Perm::CrmWrite),
            post(activities::complete),
        )
        .doc(Doc::new("Activities", "Complete an activity (idempotent)").ok::<ActivityView>()),
        ApiRoute::new(
            Method::POST,
            "/activities/{id}/reopen",
            P(Perm::CrmWrite),
            post(activities::reopen),
        )
        .doc(Doc::new("Activities", "Reopen an activity (idempotent)").ok::<ActivityView>()),
        ApiRoute::new(
            Method::DELETE,
            "/activities/{id}",
            P(Perm::CrmDelete),
            delete(activities::delete),
        )
        .doc(Doc::new("Activities", "Delete an activity").no_content()),
        ApiRoute::new(
            Method::POST,
            "/targets",
            P(Perm::CrmAssign),
            post(targets::create),
        )
        .doc(
            Doc::new("Targets", "Create a target")
                .body::<NewTarget>()
                .created::<TargetView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/targets",
            P(Perm::CrmRead),
            get(targets::list),
        )
        .doc(
            Doc::new("Targets", "Targets, each with its progress")
                .list(&crate::crm::targets::LIST)
                .page::<TargetView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/targets/{id}",
            P(Perm::CrmRead),
            get(targets::get),
        )
        .doc(Doc::new("Targets", "A target with its progress").ok::<TargetView>()),
        ApiRoute::new(
            Method::PATCH,
            "/targets/{id}",
            P(Perm::CrmAssign),
            patch(targets::update),
        )
        .doc(
            Doc::new("Targets", "Update a target")
                .body::<TargetPatch>()
                .ok::<TargetView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/targets/{id}",
            P(Perm::CrmAssign),
            delete(targets::delete),
        )
        .doc(Doc::new("Targets", "Delete a target").no_content()),
        ApiRoute::new(
            Method::GET,
            "/pipelines",
            P(Perm::CrmRead),
            get(pipelines::list),
        )
        .doc(
            Doc::new(
                "Pipelines",
                "The organization's pipelines in order, each with its stages",
            )
            .query::<PipelinesListQuery>()
            .items::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines",
            P(Perm::OrgUpdate),
            post(pipelines::create),
        )
        .doc(
            Doc::new("Pipelines", "Create a pipeline with its stages")
                .body::<NewPipeline>()
                .created::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/pipelines/{id}",
            P(Perm::CrmRead),
            get(pipelines::get),
        )
        .doc(Doc::new("Pipelines", "A pipeline").ok::<PipelineView>()),
        ApiRoute::new(
            Method::PATCH,
            "/pipelines/{id}",
            P(Perm::OrgUpdate),
            patch(pipelines::update),
        )
        .doc(
            Doc::new("Pipelines", "Rename a pipeline, or make it the default")
                .body::<PipelinePatch>()
                .ok::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines/{id}/archive",
            P(Perm::OrgUpdate),
            post(pipelines::archive),
        )
        .doc(Doc::new("Pipelines", "Archive a pipeline").ok::<PipelineView>()),
        ApiRoute::new(
            Method::POST,
            "/pipelines/{id}/stages",
            P(Perm::OrgUpdate),
            post(pipelines::add_stage),
        )
        .doc(
            Doc::new("Pipelines", "Add a stage at the end of a pipeline")
                .body::<NewStage>()
                .created::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::PUT,
            "/pipelines/{id}/stages/order",
            P(Perm::OrgUpdate),
            put(pipelines::reorder_stages),
        )
        .doc(
            Doc::new(
                "Pipelines",
                "Reorder a pipeline's stages: every active stage id, in the new order",
            )
            .body::<StageOrder>()
            .ok::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/pipelines/{id}/stages/{stage_id}",
            P(Perm::OrgUpdate),
            patch(pipelines::update_stage),
        )
        .doc(
            Doc::new("Pipelines", "Rename a stage, or change its probability")
                .body::<StagePatch>()
                .ok::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/pipelines/{id}/stages/{stage_id}/archive",
            P(Perm::OrgUpdate),
            post(pipelines::archive_stage),
        )
        .doc(
            Doc::new(
                "Pipelines",
                "Archive a stage, optionally moving its deals to another",
            )
            .optional_body::<ArchiveStage>()
            .ok::<PipelineView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/pipelines/{id}/board",
            P(Perm::CrmRead),
            get(pipelines::board),
        )
        .doc(
            Doc::new("Pipelines", "A pipeline's kanban board")
                .query::<BoardQuery>()
                .ok::<BoardView>(),
        ),
        ApiRoute::new(Method::GET, "/deals", P(Perm::CrmRead), get(deals::list)).doc(
            Doc::new("Deals", "Deals: filters, search, sort and keyset pages")
                .list(&crate::crm::deals::LIST)
                .page::<DealView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals",
            P(Perm::CrmWrite),
            post(deals::create),
        )
        .doc(
            Doc::new("Deals", "Create a deal")
                .body::<NewDeal>()
                .created::<DealView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/deals/{id}",
            P(Perm::CrmRead),
            get(deals::get),
        )
        .doc(Doc::new("Deals", "A deal with its stage-move history").ok::<DealView>()),
        ApiRoute::new(
            Method::PATCH,
            "/deals/{id}",
            P(Perm::CrmWrite),
            patch(deals::update),
        )
        .doc(
            Doc::new("Deals", "Update a deal")
                .body::<DealPatch>()
                .ok::<DealView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/deals/{id}",
            P(Perm::CrmDelete),
            delete(deals::delete),
        )
        .doc(Doc::new("Deals", "Delete a deal").no_content()),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/move",
            P(Perm::CrmWrite),
            post(deals::move_deal),
        )
        .doc(
            Doc::new("Deals", "Move a deal to a stage, between two cards")
                .body::<MoveDeal>()
                .ok::<DealView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/won",
            P(Perm::CrmWrite),
            post(deals::won),
        )
        .doc(
            Doc::new("Deals", "Mark a deal won (optional reason)")
                .optional_body::<CloseDeal>()
                .ok::<DealView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/lost",
            P(Perm::CrmWrite),
            post(deals::lost),
        )
        .doc(
            Doc::new("Deals", "Mark a deal lost (reason required)")
                .body::<CloseDeal>()
                .ok::<DealView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/deals/{id}/reopen",
            P(Perm::CrmWrite),
            post(deals::reopen),
        )
        .doc(Doc::new("Deals", "Reopen a closed deal").ok::<DealView>()),
        ApiRoute::new(
            Method::GET,
            "/billing/subscription",
            P(Perm::BillingRead),
            get(billing::subscription),
        )
        .doc(
            Doc::new(
                "Billing",
                "The subscription: plan, status and the latest paid period",
            )
            .ok::<SubscriptionView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/billing/subscription",
            P(Perm::BillingManage),
            post(payments::subscribe),
        )
        .doc(
            Doc::new(
                "Billing",
                "Pay one period of a plan by STK push (200 for a replayed Idempotency-Key)",
            )
            .body::<Subscribe>()
            .created::<Payment>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/plans",
            P(Perm::TenantsManage),
            get(billing::list_plans),
        )
        .doc(
            Doc::new(
                "Admin",
                "Every plan, archived ones included, cheapest first",
            )
            .items::<PlanView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/plans",
            P(Perm::TenantsManage),
            post(billing::create_plan),
        )
        .doc(
            Doc::new("Admin", "Create a plan")
                .body::<NewPlan>()
                .created::<PlanView>(),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/admin/plans/{code}",
            P(Perm::TenantsManage),
            patch(billing::update_plan),
        )
        .doc(
            Doc::new("Admin", "Change a plan (`active: false` archives it)")
                .body::<PlanPatch>()
                .ok::<PlanView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/organizations",
            P(Perm::TenantsManage),
            get(admin::list),
        )
        .doc(
            Doc::new("Admin", "Every organization, oldest first")
                .query::<AdminListQuery>()
                .page::<OrganizationView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations",
            P(Perm::TenantsManage),
            post(admin::create),
        )
        .doc(
            Doc::new(
                "Admin",
                "Create an organization (and its first admin's invitation, given `admin_email`)",
            )
            .body::<NewOrganization>()
            .created::<OrganizationCreated>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/suspend",
            P(Perm::TenantsManage),
            post(admin::suspend),
        )
        .doc(Doc::new("Admin", "Suspend an organization").ok::<OrganizationView>()),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/reactivate",
            P(Perm::TenantsManage),
            post(admin::reactivate),
        )
        .doc(Doc::new("Admin", "Reactivate an organization").ok::<OrganizationView>()),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/wallet/adjustments",
            P(Perm::TenantsManage),
            post(wallet::adjust),
        )
        .doc(
            Doc::new(
                "Admin",
                "Credit or debit an organization's wallet (200 for a replayed Idempotency-Key)",
            )
            .body::<Adjustment>()
            .created::<WalletAdjusted>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/payments/{payment_id}/review",
            P(Perm::TenantsManage),
            post(payments::review),
        )
        .doc(
            Doc::new("Admin", "End the review of a payment held for review")
                .body::<ReviewDecision>()
                .ok::<Payment>(),
        ),
        ApiRoute::new(
            Method::PATCH,
            "/admin/organizations/{id}/wallet",
            P(Perm::TenantsManage),
            patch(wallet::set_credit_limit),
        )
        .doc(
            Doc::new("Admin", "Set an organization's wallet credit limit")
                .body::<CreditLimit>()
                .ok::<Balance>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/payments/{payment_id}/status-query",
            P(Perm::TenantsManage),
            post(payments::admin_status_query),
        )
        .doc(
            Doc::new("Admin", "Ask M-Pesa about any organization's payment")
                .optional_body::<StatusQueryInput>()
                .accepted::<MpesaRequest>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/organizations/{id}/payments/{payment_id}/reversal",
            P(Perm::TenantsManage),
            post(payments::admin_reversal),
        )
        .doc(
            Doc::new("Admin", "Reverse any organization's succeeded payment")
                .body::<ReversalInput>()
                .accepted::<MpesaRequest>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/admin/mpesa/callbacks",
            P(Perm::TenantsManage),
            get(mpesa::admin_callbacks),
        )
        .doc(
            Doc::new("Admin", "Every stored M-Pesa callback, newest first")
                .query::<CallbacksQuery>()
                .page::<StoredCallback>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/admin/mpesa/c2b/register",
            P(Perm::TenantsManage),
            post(mpesa::admin_register_c2b),
        )
        .doc(
            Doc::new(
                "Admin",
                "Register the platform paybill's C2B URLs with Daraja",
            )
            .optional_body::<RegisterInput>()
            .ok::<C2bRegistered>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/numbers",
            P(Perm::CrmRead),
            get(whatsapp::list_numbers),
        )
        .doc(Doc::new("WhatsApp", "The organization's WhatsApp numbers").items::<NumberView>()),
        ApiRoute::new(
            Method::POST,
            "/whatsapp/numbers",
            P(Perm::CredentialsManage),
            post(whatsapp::connect_number),
        )
        .doc(
            Doc::new(
                "WhatsApp",
                "Connect a WhatsApp number (checked with Graph first)",
            )
            .body::<ConnectNumber>()
            .created::<NumberView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/numbers/{id}",
            P(Perm::CrmRead),
            get(whatsapp::get_number),
        )
        .doc(Doc::new("WhatsApp", "A WhatsApp number").ok::<NumberView>()),
        ApiRoute::new(
            Method::PATCH,
            "/whatsapp/numbers/{id}",
            P(Perm::CredentialsManage),
            patch(whatsapp::update_number),
        )
        .doc(
            Doc::new(
                "WhatsApp",
                "Give a number a new token, or make it the default",
            )
            .body::<NumberPatch>()
            .ok::<NumberView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/whatsapp/numbers/{id}",
            P(Perm::CredentialsManage),
            delete(whatsapp::disconnect_number),
        )
        .doc(Doc::new("WhatsApp", "Disconnect a WhatsApp number").ok::<NumberView>()),
        ApiRoute::new(
            Method::POST,
            "/whatsapp/messages",
            P(Perm::MessagesSend),
            post(whatsapp::send),
        )
        .doc(
            Doc::new(
                "WhatsApp",
                "Send a message: 201 accepted, 202 queued, 200 for a replayed Idempotency-Key",
            )
            .body::<SendRequest>()
            .created::<WhatsappMessageView>()
            .accepted::<WhatsappMessageView>()
            .ok::<WhatsappMessageView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/messages/{id}",
            P(Perm::CrmRead),
            get(whatsapp::get_message),
        )
        .doc(
            Doc::new("WhatsApp", "A message with its status timeline and charge")
                .ok::<WhatsappMessageView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/conversations",
            P(Perm::CrmRead),
            get(whatsapp::conversations),
        )
        .doc(
            Doc::new("WhatsApp", "Conversations, most recent first")
                .query::<PageQuery>()
                .page::<ConversationView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/conversations/{contact}",
            P(Perm::CrmRead),
            get(whatsapp::conversation),
        )
        .doc(Doc::new("WhatsApp", "A conversation").ok::<ConversationView>()),
        ApiRoute::new(
            Method::GET,
            "/whatsapp/conversations/{contact}/messages",
            P(Perm::CrmRead),
            get(whatsapp::conversation_messages),
        )
        .doc(
            Doc::new("WhatsApp", "A conversation's messages, newest first")
                .query::<PageQuery>()
                .page::<WhatsappMessageView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/whatsapp/conversations/{contact}/read",
            P(Perm::MessagesSend),
            post(whatsapp::mark_read),
        )
        .doc(Doc::new("WhatsApp", "Mark a conversation read").ok::<ConversationView>()),
        ApiRoute::new(
            Method::GET,
            "/chat/rooms",
            P(Perm::ChatUse),
            get(chat::rooms),
        )
        .doc(
            Doc::new(
                "Chat",
                "The caller's rooms with their last message and unread count",
            )
            .ok::<Rooms>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/chat/rooms/{room}/messages",
            P(Perm::ChatUse),
            get(chat::messages),
        )
        .doc(
            Doc::new("Chat", "A room's messages, newest first")
                .query::<HistoryQuery>()
                .page::<ChatMessageView>(),
        ),
        ApiRoute::new(
            Method::PUT,
            "/chat/rooms/{room}/read",
            P(Perm::ChatUse),
            put(chat::mark_read),
        )
        .doc(
            Doc::new(
                "Chat",
                "Move the caller's read position in a room (never backwards)",
            )
            .body::<MarkRead>()
            .ok::<ReadPosition>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/notifications",
            Authenticated,
            get(notifications::list),
        )
        .doc(
            Doc::new(
                "Notifications",
                "The caller's notifications, newest first, with the unread count",
            )
            .query::<NotificationsListQuery>()
            .ok::<NotificationList>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/notifications/{id}/read",
            Authenticated,
            post(notifications::read),
        )
        .doc(Doc::new("Notifications", "Mark a notification read").ok::<NotificationView>()),
        ApiRoute::new(
            Method::POST,
            "/notifications/read-all",
            Authenticated,
            post(notifications::read_all),
        )
        .doc(
            Doc::new(
                "Notifications",
                "Mark every unread notification of the caller read",
            )
            .ok::<ReadAll>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/rules",
            P(Perm::CrmRead),
            get(automation::list_rules),
        )
        .doc(Doc::new("Automation", "Automation rules").ok::<Rules>()),
        ApiRoute::new(
            Method::POST,
            "/automation/rules",
            P(Perm::OrgUpdate),
            post(automation::create_rule),
        )
        .doc(
            Doc::new("Automation", "Create an automation rule")
                .body::<RuleInput>()
                .created::<RuleView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/rules/{id}",
            P(Perm::CrmRead),
            get(automation::get_rule),
        )
        .doc(Doc::new("Automation", "An automation rule").ok::<RuleView>()),
        ApiRoute::new(
            Method::PATCH,
            "/automation/rules/{id}",
            P(Perm::OrgUpdate),
            patch(automation::update_rule),
        )
        .doc(
            Doc::new("Automation", "Update an automation rule")
                .body::<RuleInput>()
                .ok::<RuleView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/automation/rules/{id}",
            P(Perm::OrgUpdate),
            delete(automation::delete_rule),
        )
        .doc(Doc::new("Automation", "Delete an automation rule and its runs").no_content()),
        ApiRoute::new(
            Method::GET,
            "/automation/rules/{id}/runs",
            P(Perm::CrmRead),
            get(automation::list_runs),
        )
        .doc(
            Doc::new("Automation", "A rule's runs, newest first")
                .query::<RunsQuery>()
                .page::<RunView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/automation/runs/{id}",
            P(Perm::CrmRead),
            get(automation::get_run),
        )
        .doc(Doc::new("Automation", "An automation run").ok::<RunView>()),
        ApiRoute::new(
            Method::GET,
            "/webhook-endpoints",
            P(Perm::WebhooksManage),
            get(webhooks::list_endpoints),
        )
        .doc(
            Doc::new(
                "Webhooks",
                "The organization's webhook endpoints (never their secrets)",
            )
            .items::<EndpointView>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/webhook-endpoints",
            P(Perm::WebhooksManage),
            post(webhooks::create_endpoint),
        )
        .doc(
            Doc::new(
                "Webhooks",
                "Create a webhook endpoint (the signing secret is shown this once)",
            )
            .body::<CreateEndpoint>()
            .created::<EndpointWithSecret>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/webhook-endpoints/{id}",
            P(Perm::WebhooksManage),
            get(webhooks::get_endpoint),
        )
        .doc(Doc::new("Webhooks", "A webhook endpoint").ok::<EndpointView>()),
        ApiRoute::new(
            Method::PATCH,
            "/webhook-endpoints/{id}",
            P(Perm::WebhooksManage),
            patch(webhooks::update_endpoint),
        )
        .doc(
            Doc::new(
                "Webhooks",
                "Update an endpoint's url, description, event types or enabled",
            )
            .body::<EndpointPatch>()
            .ok::<EndpointView>(),
        ),
        ApiRoute::new(
            Method::DELETE,
            "/webhook-endpoints/{id}",
            P(Perm::WebhooksManage),
            delete(webhooks::delete_endpoint),
        )
        .doc(Doc::new("Webhooks", "Delete a webhook endpoint and its delivery log").no_content()),
        ApiRoute::new(
            Method::POST,
            "/webhook-endpoints/{id}/rotate-secret",
            P(Perm::WebhooksManage),
            post(webhooks::rotate_secret),
        )
        .doc(
            Doc::new(
                "Webhooks",
                "Rotate an endpoint's signing secret (shown this once)",
            )
            .ok::<EndpointWithSecret>(),
        ),
        ApiRoute::new(
            Method::POST,
            "/webhook-endpoints/{id}/test",
            P(Perm::WebhooksManage),
            post(webhooks::send_test),
        )
        .doc(Doc::new("Webhooks", "Queue a `webhook.test` delivery").accepted::<DeliveryView>()),
        ApiRoute::new(
            Method::GET,
            "/webhook-endpoints/{id}/deliveries",
            P(Perm::WebhooksManage),
            get(webhooks::list_deliveries),
        )
        .doc(
            Doc::new("Webhooks", "An endpoint's deliveries, newest first")
                .query::<DeliveriesQuery>()
                .page::<DeliveryView>(),
        ),
        ApiRoute::new(
            Method::GET,
            "/webhook-deliveries/{id}",
            P(Perm::WebhooksManage),
            get(webhooks::get_delivery),
        )
        .doc(Doc::new("Webhooks", "A delivery with its body and every try").ok::<DeliveryDetail>()),
        ApiRoute::new(
            Method::POST,
            "/webhook-deliveries/{id}/replay",
            P(Perm::WebhooksManage),
            post(webhooks::replay),
        )
        .doc(
            Doc::new(
                "Webhooks",
                "Queue a delivery again now (same message id and body)",
            )
            .accepted::<DeliveryView>(),
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
