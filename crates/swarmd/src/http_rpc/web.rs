//! transmission's own web client, served from a directory of static files at
//! `/transmission/web/` (`[rpc] web_root`; by default where Debian's `transmission-common` puts
//! it), so that a browser drives swarmd through the RPC beside it. The client's files are all it
//! needs: it talks to `../rpc` like any other RPC client.
//!
//! Owns nothing at run time: each request maps its path onto the directory ([`resolve`], pure)
//! and reads that one file. A path that would leave the directory (`..`, an encoded `/`, a
//! symlink pointing out) is refused with 403; a missing file is 404; a daemon with no web client
//! answers 404 with what to install or configure.

use std::path::{Component, Path, PathBuf};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::HttpResponse;

/// Where the client is served; transmission's clients and docs know this path.
pub const PREFIX: &str = "/transmission/web/";

/// Where Debian's `transmission-common` installs the web client: `public_html` since 4.0, `web`
/// before.
pub const DEFAULT_ROOTS: &[&str] = &[
    "/usr/share/transmission/public_html",
    "/usr/share/transmission/web",
];

/// The directory to serve: the configured one, else the first default that exists.
pub fn web_root(configured: Option<&Path>) -> Option<PathBuf> {
    match configured {
        Some(p) => Some(p.to_path_buf()),
        None => DEFAULT_ROOTS.iter().map(PathBuf::from).find(|p| p.is_dir()),
    }
}

/// Why a path was not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The path tries to leave the web root.
    Outside(String),
    NotFound(String),
}

/// The file under `root` that the request path after [`PREFIX`] names (percent-encoded as it
/// came): a directory means its `index.html`. Pure apart from reading the file system's links.
pub fn resolve(root: &Path, encoded: &str) -> Result<PathBuf, Refused> {
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| Refused::NotFound(encoded.to_owned()))?;
    let relative = Path::new(decoded.as_ref());
    let clean = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        && !decoded.contains(['\\', '\0']);
    if !clean {
        return Err(Refused::Outside(decoded.into_owned()));
    }
    let mut path = root.join(relative);
    if path.is_dir() {
        path.push("index.html");
    }
    // A symlink inside the root may point anywhere: what counts is where the file really is.
    let (Ok(real), Ok(real_root)) = (path.canonicalize(), root.canonicalize()) else {
        return Err(Refused::NotFound(decoded.into_owned()));
    };
    if !real.starts_with(&real_root) {
        return Err(Refused::Outside(decoded.into_owned()));
    }
    if !real.is_file() {
        return Err(Refused::NotFound(decoded.into_owned()));
    }
    Ok(real)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "gif" => "image/gif",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The answer to `GET` of `path` (the whole request path).
pub async fn serve(root: Option<&Path>, path: &str) -> HttpResponse {
    let Some(tail) = path.strip_prefix(PREFIX) else {
        // `/transmission/web` and `/`: where transmission-daemon sends a browser too.
        return HttpResponse::MovedPermanently()
            .insert_header((LOCATION, PREFIX))
            .finish();
    };
    let Some(root) = root else {
        return text(
            HttpResponse::NotFound(),
            "404: Not Found. swarmd serves no web client: none of /usr/share/transmission/\
             public_html or /usr/share/transmission/web exists (install Debian's \
             transmission-common) and [rpc] web_root is not set."
                .into(),
        );
    };
    let file = match resolve(root, tail) {
        Ok(f) => f,
        Err(Refused::Outside(p)) => {
            tracing::debug!(path = %p, "web client: a path outside web_root refused");
            return text(
                HttpResponse::Forbidden(),
                format!("403: Forbidden. {p:?} is outside the web client's directory."),
            );
        }
        Err(Refused::NotFound(p)) => {
            return text(
                HttpResponse::NotFound(),
                format!(
                    "404: Not Found. {p:?} is not in the web client's directory {}.",
                    root.display()
                ),
            )
        }
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, content_type(&file)))
            // The client polls the RPC, not its files; a new package version is a reload away.
            .insert_header((CACHE_CONTROL, "no-cache"))
            .body(bytes),
        Err(e) => {
            tracing::warn!(file = %file.display(), "web client: cannot read: {e}");
            text(
                HttpResponse::InternalServerError(),
                format!("500: cannot read {}: {e}", file.display()),
            )
        }
    }
}

fn text(mut r: actix_web::HttpResponseBuilder, body: String) -> HttpResponse {
    r.insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("web");
        std::fs::create_dir_all(root.join("javascript")).unwrap();
        std::fs::write(root.join("index.html"), "<html>").unwrap();
        std::fs::write(root.join("javascript/main.js"), "1").unwrap();
        std::fs::write(dir.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let real = |p: &str| root.join(p).canonicalize().unwrap();
        assert_eq!(resolve(&root, ""), Ok(real("index.html")));
        assert_eq!(
            resolve(&root, "javascript/main.js"),
            Ok(real("javascript/main.js"))
        );
        assert_eq!(
            resolve(&root, "javascript%2Fmain.js"),
            Ok(real("javascript/main.js"))
        );
        assert_eq!(
            resolve(&root, "javascript/"),
            Err(Refused::NotFound("javascript/".into()))
        );
        for outside in [
            "../secret",
            "%2e%2e/secret",
            "javascript/../../secret",
            "/etc/passwd",
            "link",
        ] {
            assert!(
                matches!(resolve(&root, outside), Err(Refused::Outside(_))),
                "{outside}: {:?}",
                resolve(&root, outside)
            );
        }
        assert!(matches!(
            resolve(&root, "nope.js"),
            Err(Refused::NotFound(_))
        ));
    }
}
