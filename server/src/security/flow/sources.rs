//! What counts as untrusted data where a function starts: the parameters of web handlers
//! (framework extractors, handler attributes) and network streams, and the cheap text test
//! ([`mentions_source`]) that decides whether a function needs walking at all. Sources met
//! inside a body (`env::var`, stdin, sockets) are recognised where calls are taken apart, in
//! [`super::expr`] and [`super::macros`].

use tree_sitter::Node;

use super::syntax::{bound_names, is_int_type, last_segment};
use super::{Env, Flow, Taint};

/// Types that only web frameworks' request extractors use.
pub(super) const EXTRACTORS: &[&str] = &[
    "Query",
    "Json",
    "Form",
    "Path",
    "HttpRequest",
    "Multipart",
    "Payload",
    "RawQuery",
    "TypedHeader",
    "RawBody",
    "RawForm",
    "Cookies",
    "CookieJar",
];

/// Types that carry request data in handlers but are used everywhere else too (inside HTTP
/// libraries, for example); they count only in free `async fn`s, the shape of a handler.
pub(super) const GENERIC_REQUEST_TYPES: &[&str] =
    &["Bytes", "Request", "HeaderMap", "Body", "String"];

const NON_REQUEST_TYPES: &[&str] = &[
    "State",
    "Data",
    "Extension",
    "Pool",
    "Db",
    "Connection",
    "Config",
    "Client",
    "Arc",
];

impl<'r, 't> Flow<'_, 'r, 't> {
    /// The taint of the function's parameters: request data when it is a web handler.
    pub(super) fn parameters(&self, func: Node<'t>) -> Env {
        let mut env = Env::new();
        let name = func
            .child_by_field_name("name")
            .map_or("", |n| self.t(n))
            .to_string();
        let mut handler_attribute = false;
        let ancestry = self.helpers.ancestry();
        let mut prev = ancestry.prev_named_sibling(func);
        while let Some(p) = prev {
            match p.kind() {
                "attribute_item" => {
                    let attr = self.t(p);
                    let head = attr
                        .trim_start_matches("#[")
                        .split(['(', ']'])
                        .next()
                        .unwrap_or("");
                    if matches!(
                        last_segment(head),
                        "get"
                            | "post"
                            | "put"
                            | "delete"
                            | "patch"
                            | "head"
                            | "route"
                            | "options"
                            | "handler"
                            | "debug_handler"
                    ) {
                        handler_attribute = true;
                    }
                }
                "line_comment" | "block_comment" => {}
                _ => break,
            }
            prev = ancestry.prev_named_sibling(p);
        }
        let Some(params) = func.child_by_field_name("parameters") else {
            return env;
        };
        let head = func.child_by_field_name("name").map_or("", |n| {
            self.text
                .get(func.start_byte()..n.start_byte())
                .unwrap_or("")
        });
        let handler_shaped = head.contains("async") && {
            let mut c = params.walk();
            !params
                .named_children(&mut c)
                .any(|p| p.kind() == "self_parameter")
        };
        let mut cursor = params.walk();
        for param in params.named_children(&mut cursor) {
            if param.kind() != "parameter" {
                continue;
            }
            let (Some(pattern), Some(ty)) = (
                param.child_by_field_name("pattern"),
                param.child_by_field_name("type"),
            ) else {
                continue;
            };
            let ty_text = self
                .t(ty)
                .trim_start_matches('&')
                .trim_start_matches("mut ");
            let outer = last_segment(ty_text);
            // Extractors are taken by value; `&Path` is `std::path::Path`, not axum's.
            let by_value = !self.t(ty).starts_with('&');
            let is_extractor = by_value
                && !ty_text.contains("path::Path")
                && (EXTRACTORS.contains(&outer)
                    || (handler_shaped && GENERIC_REQUEST_TYPES.contains(&outer)));
            // Whatever arrives on a network stream is untrusted, wherever the stream came from.
            if matches!(
                outer,
                "TcpStream" | "UdpSocket" | "UnixStream" | "TlsStream" | "SslStream"
            ) {
                let mut names = Vec::new();
                bound_names(pattern, self.text, &mut names, 0);
                for (var, node) in names {
                    let taint = Taint::source(node.byte_range(), format!("network stream `{var}`"));
                    env.insert(var, taint);
                }
                continue;
            }
            let is_plain_request_data = handler_attribute
                && !NON_REQUEST_TYPES.iter().any(|t| ty_text.contains(t))
                && !ty_text.starts_with("Option<&");
            if !(is_extractor || is_plain_request_data) {
                continue;
            }
            let mut names = Vec::new();
            bound_names(pattern, self.text, &mut names, 0);
            for (var, node) in names {
                let mut taint = Taint::source(
                    node.byte_range(),
                    format!("request data `{var}` of handler `{name}`"),
                );
                taint.numeric = is_int_type(ty_text);
                env.insert(var, taint);
            }
        }
        env
    }
}

/// Whether a function's text mentions anything the analysis treats as a source.
pub(super) fn mentions_source(text: &str, local: bool) -> bool {
    const REMOTE: &[&str] = &[
        "TcpStream",
        "UdpSocket",
        "accept()",
        "incoming()",
        // HTTP client responses (see `expr::is_http_request`).
        "send()",
        "reqwest::get",
        "blocking::get",
        "ureq::get",
    ];
    const LOCAL: &[&str] = &["env::var", "env::args", "stdin"];
    REMOTE.iter().any(|m| text.contains(m)) || (local && LOCAL.iter().any(|m| text.contains(m)))
}
