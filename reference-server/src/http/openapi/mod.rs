//! The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`, and the
//! Swagger UI at `/docs`.
//!
//! The document is built from [`super::catalog`], the same list the router is built from,
//! so a route cannot be served without being documented. Each route carries a [`Doc`]
//! (summary, tag, request body, success response, query parameters); the rest is derived:
//! path parameters from the `{name}` segments, security from the route's [`Access`], and
//! the error responses (each the one [`ErrorEnvelope`] schema) from its access and whether
//! it stays open to a suspended organization.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::http::{Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder,
    PathsBuilder, Ref, RefOr, Required, Schema, ServerBuilder,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

mod lists;
pub mod shapes;

use super::{Access, ApiRoute};
use crate::AppState;
use crate::crm::list::ListSpec;

/// Component schemas collected while the document is built: `(name, schema)`.
pub type Components = Vec<(String, RefOr<Schema>)>;

/// Produces a schema, registering the components it refers to.
type SchemaFn = fn(&mut Components) -> RefOr<Schema>;

/// Produces query parameters.
type ParamsFn = fn() -> Vec<Parameter>;

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";

/// The name of the error envelope's component schema.
const ERROR_ENVELOPE: &str = "ErrorEnvelope";

/// How a route is documented: everything the code cannot derive by itself.
#[derive(Clone)]
pub struct Doc {
    tag: &'static str,
    summary: &'static str,
    body: Option<Body>,
    responses: Vec<(u16, Content)>,
    params: Vec<Params>,
}

/// Query parameters: a type's, or a CRM list's.
#[derive(Clone, Copy)]
enum Params {
    Of(ParamsFn),
    List {
        spec: &'static ListSpec,
        paged: bool,
    },
}

#[derive(Clone, Copy)]
enum Body {
    Json { schema: SchemaFn, required: bool },
    Csv,
    Raw,
}

#[derive(Clone, Copy)]
enum Content {
    Json(SchemaFn),
    Empty,
    Csv,
    Ndjson,
    Text,
}

impl Doc {
    /// A route in the group `tag`, summed up in one line.
    pub fn new(tag: &'static str, summary: &'static str) -> Self {
        Self {
            tag,
            summary,
            body: None,
            responses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// A JSON request body of type `T`.
    pub fn body<T: ToSchema>(mut self) -> Self {
        self.body = Some(Body::Json {
            schema: component::<T>,
            required: true,
        });
        self
    }

    /// A JSON request body of type `T` that may be left out.
    pub fn optional_body<T: ToSchema>(mut self) -> Self {
        self.body = Some(Body::Json {
            schema: component::<T>,
            required: false,
        });
        self
    }

    /// A `text/csv` request body.
    pub fn csv_body(mut self) -> Self {
        self.body = Some(Body::Csv);
        self
    }

    /// A request body taken as raw bytes (a provider's callback, checked and stored as sent).
    pub fn raw_body(mut self) -> Self {
        self.body = Some(Body::Raw);
        self
    }

    /// The query parameters of `T`.
    pub fn query<T: IntoParams>(mut self) -> Self {
        self.params.push(Params::Of(query_params::<T>));
        self
    }

    /// The query of the CRM list `spec`: a page of it, with its filters, sort fields and
    /// search.
    pub fn list(mut self, spec: &'static ListSpec) -> Self {
        self.params.push(Params::List { spec, paged: true });
        self
    }

    /// The filters, sort fields and search of the CRM list `spec`, for an export of every
    /// row (no `limit` or `cursor`).
    pub fn list_filters(mut self, spec: &'static ListSpec) -> Self {
        self.params.push(Params::List { spec, paged: false });
        self
    }

    /// 200 with a `T`.
    pub fn ok<T: ToSchema>(self) -> Self {
        self.answers::<T>(200)
    }

    /// 200 with a keyset page of `T`.
    pub fn page<T: ToSchema>(mut self) -> Self {
        self.responses
            .push((200, Content::Json(generic::<T, edge_core::Page<T>>)));
        self
    }

    /// 200 with `{"items": [T]}`, a whole list.
    pub fn items<T: ToSchema>(mut self) -> Self {
        self.responses
            .push((200, Content::Json(generic::<T, shapes::Items<T>>)));
        self
    }

    /// 201 with the created `T`.
    pub fn created<T: ToSchema>(self) -> Self {
        self.answers::<T>(201)
    }

    /// 202 with the queued `T`.
    pub fn accepted<T: ToSchema>(self) -> Self {
        self.answers::<T>(202)
    }

    /// `status` with a `T`.
    pub fn answers<T: ToSchema>(mut self, status: u16) -> Self {
        self.responses.push((status, Content::Json(component::<T>)));
        self
    }

    /// 204, no body.
    pub fn no_content(mut self) -> Self {
        self.responses.push((204, Content::Empty));
        self
    }

    /// 200 with a `text/csv` body.
    pub fn csv(mut self) -> Self {
        self.responses.push((200, Content::Csv));
        self
    }

    /// 200 with newline-delimited JSON (`application/x-ndjson`).
    pub fn ndjson(mut self) -> Self {
        self.responses.push((200, Content::Ndjson));
        self
    }

    /// 200 with a `text/plain` body.
    pub fn text(mut self) -> Self {
        self.responses.push((200, Content::Text));
        self
    }
}

/// A `$ref` to `T`'s component schema, registering it and what it refers to.
fn component<T: ToSchema>(components: &mut Components) -> RefOr<Schema> {
    let name = T::name().into_owned();
    T::schemas(components);
    components.push((name.clone(), T::schema()));
    RefOr::Ref(Ref::from_schema_name(name))
}

/// The schema of `G`, a generic type such as `Page<T>`, written in place (generic types
/// have no component of their own), with `T` registered as a component.
fn generic<T: ToSchema, G: ToSchema>(components: &mut Components) -> RefOr<Schema> {
    component::<T>(components);
    G::schemas(components);
    G::schema()
}

fn query_params<T: IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

/// The error envelope every error answers with: `{"error": {"code", "message", "details"}}`.
///
/// Documentation only: [`super::error::ApiError`] writes it.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The inside of [`ErrorEnvelope`].
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code, e.g. `validation_failed`, `not_found`,
    /// `subscription_suspended`, `rate_limited`.
    #[schema(examples("validation_failed"))]
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Machine-readable details, or `null`; a 422 `validation_failed` carries
    /// `{"fields": [{"field", "message"}]}`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// A route outside `/api/v1`.
struct RootRoute {
    method: Method,
    path: &'static str,
    doc: Doc,
}

/// The routes outside `/api/v1` that clients and providers call: health, the M-Pesa
/// callbacks and the WhatsApp webhook (see [`super::callbacks::routes`] and
/// [`super::whatsapp::webhook_routes`]). They take no bearer token.
fn root_routes() -> Vec<RootRoute> {
    use shapes::{CallbackAck, Handshake, Health, Readiness, WebhookAck};
    let route = |method, path, doc| RootRoute { method, path, doc };
    let callback = |summary| {
        Doc::new("M-Pesa callbacks", summary)
            .raw_body()
            .ok::<CallbackAck>()
    };
    vec![
        route(
            Method::GET,
            "/healthz",
            Doc::new("Health", "The process is alive and serving HTTP").ok::<Health>(),
        ),
        route(
            Method::GET,
            "/readyz",
            Doc::new(
                "Health",
                "The database answers and every migration is applied (503 names what is not)",
            )
            .ok::<Readiness>(),
        ),
        route(
            Method::POST,
            "/callbacks/mpesa/{org}/{token}",
            callback("An STK push result from Daraja"),
        ),
        route(
            Method::POST,
            "/callbacks/mpesa/{org}/{token}/result",
            callback("A status query, reversal or B2C result from Daraja"),
        ),
        route(
            Method::POST,
            "/callbacks/mpesa/{org}/{token}/timeout",
            callback("A queue timeout from Daraja"),
        ),
        route(
            Method::POST,
            "/callbacks/c2b/platform/{token}/validation",
            callback("C2B validation for the platform's paybill"),
        ),
        route(
            Method::POST,
            "/callbacks/c2b/platform/{token}/confirmation",
            callback("C2B confirmation of a payment to the platform's paybill"),
        ),
        route(
            Method::POST,
            "/callbacks/c2b/{org}/{token}/validation",
            callback("C2B validation for an organization's own shortcode"),
        ),
        route(
            Method::POST,
            "/callbacks/c2b/{org}/{token}/confirmation",
            callback("C2B confirmation of a payment to an organization's own shortcode"),
        ),
        route(
            Method::GET,
            "/webhooks/whatsapp",
            Doc::new(
                "WhatsApp webhook",
                "The verification handshake: echoes `hub.challenge` when `hub.verify_token` matches",
            )
            .query::<Handshake>()
            .text(),
        ),
        route(
            Method::POST,
            "/webhooks/whatsapp",
            Doc::new(
                "WhatsApp webhook",
                "Message and status events from Meta, signed with `X-Hub-Signature-256`",
            )
            .raw_body()
            .ok::<WebhookAck>(),
        ),
    ]
}

/// The OpenAPI document of every route: [`super::catalog`] under `/api/v1`, and the
/// routes outside it.
pub fn document() -> OpenApi {
    let mut components = Components::new();
    let mut paths = PathsBuilder::new();
    let mut tags: Vec<&'static str> = Vec::new();
    for route in super::catalog() {
        let ApiRoute {
            method,
            path,
            access,
            available_when_suspended,
            doc,
            ..
        } = route;
        let Some(doc) = doc else { continue };
        let full = format!("/api/v1{path}");
        let operation = operation(
            &method,
            &full,
            &doc,
            access,
            available_when_suspended,
            &mut components,
        );
        if !tags.contains(&doc.tag) {
            tags.push(doc.tag);
        }
        if let Some(method) = http_method(&method) {
            paths = paths.path(full, PathItem::new(method, operation));
        }
    }
    for RootRoute { method, path, doc } in root_routes() {
        let operation = operation(&method, path, &doc, Access::Public, true, &mut components);
        if !tags.contains(&doc.tag) {
            tags.push(doc.tag);
        }
        if let Some(method) = http_method(&method) {
            paths = paths.path(path, PathItem::new(method, operation));
        }
    }
    component::<ErrorEnvelope>(&mut components);
    let mut schemas = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A user's access token (a JWT from `/auth/login`, `/auth/signup` or \
                     `/auth/refresh`), or an API key (`edge_live_…`, from `/api-keys`).",
                ))
                .build(),
        ),
    );
    let mut seen = std::collections::HashSet::new();
    for (name, schema) in components {
        if seen.insert(name.clone()) {
            schemas = schemas.schema(name, schema);
        }
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Edge API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Multi-tenant CRM, WhatsApp Business messaging and M-Pesa billing. \
                     Every error answers with the `ErrorEnvelope`.",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new().url("/").build()]))
        .tags(Some(
            tags.into_iter()
                .map(|tag| TagBuilder::new().name(tag).build()),
        ))
        .paths(paths.build())
        .components(Some(schemas.build()))
        .build()
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        Method::TRACE => HttpMethod::Trace,
        _ => return None,
    })
}

/// `post_prospects_id_convert` for `POST /api/v1/prospects/{id}/convert`.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for segment in path
        .trim_start_matches("/api/v1")
        .split('/')
        .filter(|s| !s.is_empty())
    {
        id.push('_');
        id.extend(
            segment
                .chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn operation(
    method: &Method,
    path: &str,
    doc: &Doc,
    access: Access,
    available_when_suspended: bool,
    components: &mut Components,
) -> Operation {
    let mut op = OperationBuilder::new()
        .operation_id(Some(operation_id(method, path)))
        .summary(Some(doc.summary))
        .tag(doc.tag);
    if let Access::Permission(permission) = access {
        op = op.description(Some(format!(
            "Requires the `{}` permission.",
            permission.as_str()
        )));
    }
    for name in path_parameters(path) {
        op = op.parameter(path_parameter(name));
    }
    for params in &doc.params {
        let params = match *params {
            Params::Of(params) => params(),
            Params::List { spec, paged } => lists::parameters(spec, paged),
        };
        for param in params {
            op = op.parameter(param);
        }
    }
    if let Some(body) = doc.body {
        let (content_type, schema, required) = match body {
            Body::Json { schema, required } => ("application/json", schema(components), required),
            Body::Csv => ("text/csv", string_schema(), true),
            Body::Raw => ("application/json", object_schema(), true),
        };
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    content_type,
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
                .required(Some(if required {
                    Required::True
                } else {
                    Required::False
                }))
                .build(),
        ));
    }
    for (status, content) in &doc.responses {
        op = op.response(status.to_string(), success(*status, *content, components));
    }
    for (status, description) in error_statuses(access, available_when_suspended, doc) {
        op = op.response(status, error_response(status, description));
    }
    if access != Access::Public {
        op = op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
    }
    op.build()
}

/// The `{name}` segments of a path, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn path_parameter(name: &str) -> Parameter {
    // Record ids are UUIDs; a plan code, chat room, organization slug in a callback URL
    // or a callback token is a string.
    let is_uuid = name == "id" || name.ends_with("_id") || name == "contact";
    let schema = if is_uuid {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .build()
    } else {
        ObjectBuilder::new().schema_type(Type::String).build()
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(schema))
        .build()
}

fn string_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn object_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

fn success(status: u16, content: Content, components: &mut Components) -> Response {
    let description = match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        _ => "Success",
    };
    let response = ResponseBuilder::new().description(description);
    match content {
        Content::Json(schema) => response.content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(schema(components)))
                .build(),
        ),
        Content::Empty => response,
        Content::Csv => response.content(
            "text/csv",
            ContentBuilder::new().schema(Some(string_schema())).build(),
        ),
        Content::Ndjson => response.content(
            "application/x-ndjson",
            ContentBuilder::new().schema(Some(string_schema())).build(),
        ),
        Content::Text => response.content(
            "text/plain",
            ContentBuilder::new().schema(Some(string_schema())).build(),
        ),
    }
    .build()
}

/// The error responses a route may answer, derived from its access and body.
fn error_statuses(
    access: Access,
    available_when_suspended: bool,
    doc: &Doc,
) -> Vec<(&'static str, &'static str)> {
    let mut statuses = vec![(
        "400",
        "Malformed request: JSON that does not parse, or a bad query parameter",
    )];
    if access != Access::Public {
        statuses.push((
            "401",
            "Missing, expired or revoked access token or API key (`unauthenticated`)",
        ));
    }
    if !available_when_suspended && access != Access::Public {
        statuses.push((
            "402",
            "The organization's subscription is suspended (`subscription_suspended`), or its \
             wallet cannot pay (`insufficient_funds`)",
        ));
    }
    if matches!(access, Access::Permission(_)) {
        statuses.push((
            "403",
            "The caller's role lacks the permission (`forbidden`)",
        ));
    }
    statuses.push((
        "404",
        "No such record in the caller's organization (`not_found`)",
    ));
    statuses.push((
        "409",
        "Conflict with the current state, or an idempotency key reused",
    ));
    if matches!(doc.body, Some(Body::Json { .. })) {
        statuses.push((
            "413",
            "The request body is larger than the server accepts (`payload_too_large`)",
        ));
        statuses.push((
            "415",
            "The body is not `application/json` (`unsupported_media_type`)",
        ));
    }
    statuses.push((
        "422",
        "Validation failed; `details.fields` names each field (`validation_failed`)",
    ));
    statuses.push((
        "429",
        "Rate limited (`rate_limited`); retry after `Retry-After` seconds",
    ));
    statuses.push((
        "5XX",
        "Internal error (500), upstream error (502), unavailable (503) or upstream timeout (504)",
    ));
    statuses
}

fn error_response(status: &str, description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name(ERROR_ENVELOPE))))
            .build(),
    );
    if status == "429" {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before retrying."))
                .build(),
        );
    }
    response.build()
}

/// The document as JSON, built once.
pub fn document_json() -> Arc<str> {
    static JSON: OnceLock<Arc<str>> = OnceLock::new();
    JSON.get_or_init(|| match document().to_json() {
        Ok(json) => Arc::from(json),
        // Serializing a tree of strings and maps cannot fail; answer an empty document
        // rather than panic if it ever did.
        Err(err) => {
            tracing::error!(error = %err, "cannot serialize the OpenAPI document");
            Arc::from("{}")
        }
    })
    .clone()
}

/// `GET /openapi.json` and the Swagger UI at `/docs` (and `/docs/`, which `/docs` redirects
/// to), its files served from the binary.
pub fn routes() -> Router<AppState> {
    let ui = SwaggerUi::new("/docs").config(
        Config::new(["/openapi.json"])
            // Swagger UI would otherwise send the document to validator.swagger.io.
            .validator_url("none"),
    );
    Router::new()
        .route("/openapi.json", get(serve_document))
        .merge(Router::from(ui))
}

async fn serve_document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json().to_string(),
    )
}
