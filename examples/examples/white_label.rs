//! A partner ships the Edge reference server under its own brand: "Savanna CRM" by
//! Savanna Cloud. The partner's program builds Edge's server (`edge_server::Application`)
//! with routes of its own (a landing page and `GET /brand`), puts its name on every
//! response (`X-Powered-By: Savanna CRM`), and resolves each request's organization from
//! its host with edge-tenancy's resolver: `acme.savanna.test` is the organization whose
//! slug is `acme`, and an organization's own domain (set through Edge's
//! `PATCH /api/v1/organization` as `branding.custom_domain`) resolves to it too. A token
//! of one organization used on another organization's host is answered 404, as if the
//! organization did not exist.
//!
//! ```text
//! cargo run -p edge-examples --example white_label -- --fake
//! EDGE_DATA_DIR=./data PARTNER_DOMAIN=savanna.example EDGE_BIND=0.0.0.0:8080 \
//!   cargo run -p edge-examples --example white_label
//! ```
//!
//! `--fake` runs the server on `127.0.0.1:0` over a new SQLite database in a temporary
//! directory, signs up two organizations (Acme and Globex) on the partner's domain, then
//! calls `acme.savanna.test`, `globex.savanna.test`, an unknown subdomain and Acme's
//! custom domain (the HTTP client resolves those names to the local port, so each request
//! carries the real `Host`), checks every answer, and exits 0 when all pass, 1 otherwise.
//!
//! Without `--fake` it reads Edge's usual configuration from the environment
//! (`EDGE_*`, see the README) plus `PARTNER_DOMAIN` (default `savanna.example`), and
//! serves the partner's site on `EDGE_BIND`. Point `*.PARTNER_DOMAIN` and your customers'
//! domains at it. It is the whole server — the API, realtime chat at `/socket.io` and the
//! background jobs — so it replaces `edge-server serve` rather than running beside it.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, HOST};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use edge_server::{Application, Config};
use edge_tenancy::axum::ApiError;
use edge_tenancy::resolver::normalize_host;
use edge_tenancy::{OrgRecord, TenantResolver};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PRODUCT: &str = "Savanna CRM";
const PARTNER: &str = "Savanna Cloud";

/// The partner's site: its apex domain and a resolver that knows it.
#[derive(Clone)]
struct Site {
    domain: String,
    resolver: TenantResolver,
}

/// The organization a request's host names; `None` on the partner's own domain.
#[derive(Clone)]
struct HostOrg(Option<OrgRecord>);

/// Resolves the organization from `Host` before Edge sees the request. Unknown hosts are
/// 404; a bearer credential of another organization is 404 too (Edge's own
/// authentication then runs as usual for everything else).
async fn tenant_by_host(State(site): State<Site>, mut request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(normalize_host);
    // The partner's apex (and direct access by IP or localhost) addresses no organization.
    let org = match host {
        Some(host) if host != site.domain && host != "localhost" => {
            match site.resolver.org_from_host(&host).await {
                Ok(org) => Some(org),
                Err(err) => return ApiError(err).into_response(),
            }
        }
        _ => None,
    };
    // A credential of another organization is refused here; credentials that do not
    // resolve at all are left for Edge's own authentication to answer 401.
    if let Some(org) = &org
        && let Some(credential) = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        && let Ok(tenant) = site.resolver.from_authorization(credential).await
        && let Err(err) = tenant.ensure_org(org.id)
    {
        return ApiError(err).into_response();
    }
    request.extensions_mut().insert(HostOrg(org));
    next.run(request).await
}

async fn powered_by(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert("x-powered-by", HeaderValue::from_static(PRODUCT));
    response
}

/// `GET /brand`: what the partner's front end needs to dress the page.
async fn brand(Extension(HostOrg(org)): Extension<HostOrg>) -> Json<Value> {
    let organization = org.map(|o| json!({ "id": o.id.to_string(), "slug": o.slug }));
    Json(json!({
        "product": PRODUCT,
        "partner": PARTNER,
        "organization": organization,
    }))
}

/// `GET /`: the partner's landing page, or an organization's sign-in page.
async fn landing(Extension(HostOrg(org)): Extension<HostOrg>) -> Html<String> {
    Html(match org {
        Some(org) => format!("<h1>{PRODUCT}</h1><p>Sign in to {}.</p>", org.slug),
        None => format!("<h1>{PRODUCT}</h1><p>By {PARTNER}. Start a free trial today.</p>"),
    })
}

/// Edge, with the partner's routes added and the partner's layers around everything:
/// the same server `edge-server serve` runs (background jobs and realtime included),
/// dressed as the partner's product.
async fn partner_edge(config: Config, domain: &str) -> Result<Application, BoxError> {
    let edge = Application::build(config).await?;
    let site = Site {
        domain: domain.to_owned(),
        resolver: edge.state().resolver.clone().with_base_domains([domain]),
    };
    let partner_routes = Router::new()
        .route("/", get(landing))
        .route("/brand", get(brand));
    Ok(edge.with_routes(partner_routes).wrap_router(move |router| {
        router
            .layer(middleware::from_fn_with_state(site, tenant_by_host))
            .layer(middleware::map_response(powered_by))
    }))
}

/// A client that sends requests for `hosts` to the local server, with their real `Host`.
fn client_for(hosts: &[&str], server: SocketAddr) -> Result<reqwest::Client, BoxError> {
    let mut builder = reqwest::Client::builder();
    for host in hosts {
        builder = builder.resolve(host, server);
    }
    Ok(builder.build()?)
}

async fn expect(
    what: &str,
    request: reqwest::RequestBuilder,
    status: u16,
) -> Result<(reqwest::header::HeaderMap, Value), BoxError> {
    let response = request.send().await?;
    let got = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    if got != status {
        return Err(format!("{what}: expected {status}, got {got} {text}").into());
    }
    println!("ok  {what} -> {got}");
    Ok((headers, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

async fn run_fake() -> Result<(), BoxError> {
    let domain = "savanna.test";
    let data = tempfile::tempdir()?;
    let config = Config::from_vars([
        ("EDGE_DATA_DIR", data.path().display().to_string()),
        ("EDGE_BIND", "127.0.0.1:0".to_owned()),
    ])?;
    let edge = partner_edge(config, domain).await?;
    let server = edge.address();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(edge.run_until(async move {
        stopped.await.ok();
    }));

    let port = server.port();
    let hosts = [
        domain,
        "acme.savanna.test",
        "globex.savanna.test",
        "nobody.savanna.test",
        "crm.acme-bakery.co.ke",
    ];
    let http = client_for(&hosts, server)?;
    let url = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    println!("{PRODUCT} at {server}, answering *.{domain}");

    let (headers, _) = expect("partner landing page", http.get(url(domain, "/")), 200).await?;
    if headers.get("x-powered-by") != Some(&HeaderValue::from_static(PRODUCT)) {
        return Err("the landing page does not carry the partner's name".into());
    }
    let mut tokens = Vec::new();
    for (name, email) in [
        ("Acme", "wanjiru@acme.test"),
        ("Globex", "otieno@globex.test"),
    ] {
        let (_, body) = expect(
            &format!("sign up {name} on {domain}"),
            http.post(url(domain, "/api/v1/auth/signup")).json(&json!({
                "organization_name": name,
                "name": "Owner",
                "email": email,
                "password": "a long demo passphrase",
            })),
            201,
        )
        .await?;
        let token = body["access_token"].as_str().ok_or("no access token")?;
        println!("    {name} has the slug {}", body["organization"]["slug"]);
        tokens.push(token.to_owned());
    }
    let (acme, globex) = (&tokens[0], &tokens[1]);

    let (headers, brand) = expect(
        "brand on acme.savanna.test",
        http.get(url("acme.savanna.test", "/brand")),
        200,
    )
    .await?;
    if brand["organization"]["slug"] != "acme" || brand["partner"] != PARTNER {
        return Err(format!("acme.savanna.test/brand answered {brand}").into());
    }
    if headers.get("x-powered-by").is_none() {
        return Err("/brand does not carry the partner's name".into());
    }
    let (_, org) = expect(
        "Acme's token on acme.savanna.test",
        http.get(url("acme.savanna.test", "/api/v1/organization"))
            .bearer_auth(acme),
        200,
    )
    .await?;
    if org["name"] != "Acme" {
        return Err(format!("Acme's organization is {org}").into());
    }
    let (_, refused) = expect(
        "Globex's token on acme.savanna.test",
        http.get(url("acme.savanna.test", "/api/v1/organization"))
            .bearer_auth(globex),
        404,
    )
    .await?;
    if refused["error"]["code"] != "not_found" {
        return Err(format!("expected Edge's not_found envelope, got {refused}").into());
    }
    expect(
        "Globex's token on globex.savanna.test",
        http.get(url("globex.savanna.test", "/api/v1/organization"))
            .bearer_auth(globex),
        200,
    )
    .await?;
    expect(
        "an unknown subdomain",
        http.get(url("nobody.savanna.test", "/brand")),
        404,
    )
    .await?;
    expect(
        "a custom domain nobody has claimed",
        http.get(url("crm.acme-bakery.co.ke", "/brand")),
        404,
    )
    .await?;

    expect(
        "Acme sets its custom domain and display name",
        http.patch(url("acme.savanna.test", "/api/v1/organization"))
            .bearer_auth(acme)
            .json(&json!({ "branding": {
                "custom_domain": "CRM.Acme-Bakery.co.ke",
                "display_name": "Acme CRM",
            }})),
        200,
    )
    .await?;
    let (_, brand) = expect(
        "brand on crm.acme-bakery.co.ke",
        http.get(url("crm.acme-bakery.co.ke", "/brand")),
        200,
    )
    .await?;
    if brand["organization"]["slug"] != "acme" {
        return Err(format!("crm.acme-bakery.co.ke/brand answered {brand}").into());
    }
    let (_, org) = expect(
        "Acme's token on its own domain",
        http.get(url("crm.acme-bakery.co.ke", "/api/v1/organization"))
            .bearer_auth(acme),
        200,
    )
    .await?;
    if org["branding"]["display_name"] != "Acme CRM" {
        return Err(format!("Acme's branding is {}", org["branding"]).into());
    }
    expect(
        "Globex's token on Acme's domain",
        http.get(url("crm.acme-bakery.co.ke", "/api/v1/organization"))
            .bearer_auth(globex),
        404,
    )
    .await?;

    stop.send(()).ok();
    serving.await??;
    println!("OK: every check passed");
    Ok(())
}

async fn run_server() -> Result<(), BoxError> {
    let config = Config::from_env()?;
    let domain = std::env::var("PARTNER_DOMAIN").unwrap_or_else(|_| "savanna.example".into());
    let edge = partner_edge(config, &domain).await?;
    println!(
        "{PRODUCT} on http://{}, answering {domain} and *.{domain}",
        edge.address()
    );
    edge.run_until(edge_server::shutdown_signal()).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    edge_server::install_crypto_provider();
    let result = if std::env::args().skip(1).any(|a| a == "--fake") {
        run_fake().await
    } else {
        run_server().await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
