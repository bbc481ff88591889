//! `GET /openapi.json`: an OpenAPI 3.1 document built from the route table
//! (`routes.rs`) the router is built from, with `utoipa`'s types, so what
//! it describes is what is served.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder,
    Required, ResponseBuilder, ResponsesBuilder,
};

use super::routes::{self, Route};

fn method(name: &str) -> HttpMethod {
    match name {
        "put" => HttpMethod::Put,
        "post" => HttpMethod::Post,
        "patch" => HttpMethod::Patch,
        "delete" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// The `{name}` parameters of a path.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let mut op = OperationBuilder::new()
        .summary(Some(route.summary))
        .tag(route.tag)
        .operation_id(Some(format!(
            "{}{}",
            route.method,
            route.path.replace(['/', '{', '}', '.'], "_")
        )));
    for name in path_params(route.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string_schema())),
        );
    }
    for (name, meaning) in route.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*meaning))
                .schema(Some(string_schema())),
        );
    }
    if let Some(body) = route.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some(body))
                .required(Some(Required::True))
                .content("application/json", ContentBuilder::new().build())
                .build(),
        ));
    }
    let mut responses = ResponsesBuilder::new();
    for (code, meaning) in route.responses {
        responses = responses.response(
            code.to_string(),
            ResponseBuilder::new().description(*meaning).build(),
        );
    }
    if route.guarded {
        responses = responses.response(
            "401",
            ResponseBuilder::new()
                .description("the bearer token is missing or wrong (when one is configured)")
                .build(),
        );
        op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
    }
    op.responses(responses.build()).build()
}

/// The document for `table`.
pub fn build(table: &[Route]) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in table {
        paths = paths.path(
            route.path,
            PathItem::new(method(route.method), operation(route)),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("ringmaster")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Cron schedules, a durable priority queue to busy agents, capacity and \
                     liveness, delegation sweeps. Every error is {\"error\", \"field\"?} JSON.",
                )),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .build(),
        ))
        .build()
}

/// The served document's text, built once.
pub fn text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        serde_json::to_string_pretty(&build(&routes::all())).unwrap_or_else(|_| "{}".to_string())
    })
}

pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], text())
}
