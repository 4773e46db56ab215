//! `GET /api/openapi.json`: both dialects and Arca's token API, generated with utoipa from the request types in the code.
//!
//! The Harness dialect is routed by hand (refs contain slashes), so its operations are declared
//! here on documentation-only functions; their request bodies are the real types the handlers parse.

#![allow(dead_code)]

use axum::Json;
use utoipa::OpenApi;

use super::gitflic::{
    LocalSettings, ProxySettingsDto, RepositoryRequest, RestoreRequest, VirtualSettingsDto,
};
use super::harness::RegistryRequest;
use super::tokens::TokenRequest;
use crate::model::CleanupPolicy;

macro_rules! doc_op {
    ($name:ident, $method:ident, $path:literal, $tag:literal, $summary:literal $(, body = $body:ty)? $(, params($($p:tt)*))?) => {
        #[utoipa::path($method, path = $path, tag = $tag, summary = $summary,
            $(request_body = $body,)?
            $(params($($p)*),)?
            responses((status = 200, description = "Success"), (status = 400, description = "Bad request"),
                      (status = 401, description = "Unauthenticated"), (status = 403, description = "Unauthorized"),
                      (status = 404, description = "Not found"), (status = 500, description = "Internal server error")),
            security(("x-api-key" = [])))]
        fn $name() {}
    };
}

doc_op!(
    h_create,
    post,
    "/har/api/v1/registry",
    "Harness registries",
    "Create a registry",
    body = RegistryRequest,
    params((
        "space_ref" = String,
        Query,
        description = "account/+, account/org/+ or account/org/project/+"
    ))
);
doc_op!(
    h_get,
    get,
    "/har/api/v1/registry/{registry_ref}",
    "Harness registries",
    "Get a registry",
    params((
        "registry_ref" = String,
        Path,
        description = "account[/org[/project]]/registry followed by /+, or percent-encoded"
    ))
);
doc_op!(
    h_update,
    put,
    "/har/api/v1/registry/{registry_ref}",
    "Harness registries",
    "Update a registry",
    body = RegistryRequest,
    params(("registry_ref" = String, Path,))
);
doc_op!(
    h_delete,
    delete,
    "/har/api/v1/registry/{registry_ref}",
    "Harness registries",
    "Delete a registry",
    params(("registry_ref" = String, Path,))
);
doc_op!(h_artifacts, get, "/har/api/v1/registry/{registry_ref}/artifacts", "Harness artifacts", "List artifacts of a registry",
    params(("registry_ref" = String, Path,), ("label" = Option<Vec<String>>, Query,), ("page" = Option<i64>, Query,),
           ("size" = Option<i64>, Query,), ("sort_order" = Option<String>, Query,), ("sort_field" = Option<String>, Query,),
           ("search_term" = Option<String>, Query,)));
doc_op!(h_setup, get, "/har/api/v1/registry/{registry_ref}/client-setup-details", "Harness registries", "Client setup details",
    params(("registry_ref" = String, Path,), ("artifact" = Option<String>, Query,), ("version" = Option<String>, Query,)));
doc_op!(
    h_labels,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/labels",
    "Harness artifacts",
    "List artifact labels",
    params(("registry_ref" = String, Path,))
);
doc_op!(
    h_art_delete,
    delete,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}",
    "Harness artifacts",
    "Delete an artifact (to the trash can)",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,)
    )
);
doc_op!(
    h_art_summary,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/summary",
    "Harness artifacts",
    "Artifact summary",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,)
    )
);
doc_op!(
    h_art_labels,
    put,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/labels",
    "Harness artifacts",
    "Replace artifact labels",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,)
    )
);
doc_op!(
    h_versions,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/versions",
    "Harness artifacts",
    "List versions",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,)
    )
);
doc_op!(
    h_ver_delete,
    delete,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/version/{version}",
    "Harness artifacts",
    "Delete a version (to the trash can)",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,),
        ("version" = String, Path,)
    )
);
doc_op!(
    h_ver_summary,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/version/{version}/summary",
    "Harness artifacts",
    "Version summary",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,),
        ("version" = String, Path,)
    )
);
doc_op!(
    h_ver_details,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/version/{version}/details",
    "Harness artifacts",
    "Version details",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,),
        ("version" = String, Path,)
    )
);
doc_op!(
    h_files,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/version/{version}/files",
    "Harness artifacts",
    "List files of a version",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,),
        ("version" = String, Path,)
    )
);
doc_op!(
    h_file,
    get,
    "/har/api/v1/registry/{registry_ref}/artifact/{artifact}/version/{version}/file/{file_name}",
    "Harness artifacts",
    "Check a file exists",
    params(
        ("registry_ref" = String, Path,),
        ("artifact" = String, Path,),
        ("version" = String, Path,),
        ("file_name" = String, Path,)
    )
);
doc_op!(h_space_regs, get, "/har/api/v1/spaces/{space_ref}/registries", "Harness spaces", "List registries of a space",
    params(("space_ref" = String, Path,), ("package_type" = Option<Vec<String>>, Query,), ("type" = Option<String>, Query,),
           ("scope" = Option<String>, Query,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,)));
doc_op!(h_space_arts, get, "/har/api/v1/spaces/{space_ref}/artifacts", "Harness spaces", "List artifacts of a space",
    params(("space_ref" = String, Path,), ("reg_identifier" = Option<Vec<String>>, Query,), ("package_type" = Option<Vec<String>>, Query,)));

doc_op!(g_list_p, get, "/registry/project/{ownerAlias}/{projectAlias}/repositories", "GitFlic", "List repositories of a project",
    params(("ownerAlias" = String, Path,), ("projectAlias" = String, Path,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,)));
doc_op!(
    g_create_p,
    post,
    "/registry/project/{ownerAlias}/{projectAlias}/repositories",
    "GitFlic",
    "Create a repository in a project",
    body = RepositoryRequest,
    params(
        ("ownerAlias" = String, Path,),
        ("projectAlias" = String, Path,)
    )
);
doc_op!(
    g_get_p,
    get,
    "/registry/project/{ownerAlias}/{projectAlias}/repositories/{uuid}",
    "GitFlic",
    "Get a repository of a project",
    params(
        ("ownerAlias" = String, Path,),
        ("projectAlias" = String, Path,),
        ("uuid" = String, Path,)
    )
);
doc_op!(
    g_mod_p,
    put,
    "/registry/project/{ownerAlias}/{projectAlias}/repositories/{uuid}",
    "GitFlic",
    "Modify a repository of a project",
    body = RepositoryRequest,
    params(
        ("ownerAlias" = String, Path,),
        ("projectAlias" = String, Path,),
        ("uuid" = String, Path,)
    )
);
doc_op!(
    g_del_p,
    delete,
    "/registry/project/{ownerAlias}/{projectAlias}/repositories/{uuid}",
    "GitFlic",
    "Delete a repository of a project",
    params(
        ("ownerAlias" = String, Path,),
        ("projectAlias" = String, Path,),
        ("uuid" = String, Path,)
    )
);
doc_op!(
    g_list_c,
    get,
    "/registry/company/{companyAlias}/repositories",
    "GitFlic",
    "List repositories of a company",
    params(("companyAlias" = String, Path,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,))
);
doc_op!(
    g_create_c,
    post,
    "/registry/company/{companyAlias}/repositories",
    "GitFlic",
    "Create a repository in a company",
    body = RepositoryRequest,
    params(("companyAlias" = String, Path,))
);
doc_op!(
    g_get_c,
    get,
    "/registry/company/{companyAlias}/repositories/{uuid}",
    "GitFlic",
    "Get a repository of a company",
    params(("companyAlias" = String, Path,), ("uuid" = String, Path,))
);
doc_op!(
    g_mod_c,
    put,
    "/registry/company/{companyAlias}/repositories/{uuid}",
    "GitFlic",
    "Modify a repository of a company",
    body = RepositoryRequest,
    params(("companyAlias" = String, Path,), ("uuid" = String, Path,))
);
doc_op!(
    g_del_c,
    delete,
    "/registry/company/{companyAlias}/repositories/{uuid}",
    "GitFlic",
    "Delete a repository of a company",
    params(("companyAlias" = String, Path,), ("uuid" = String, Path,))
);
doc_op!(
    g_list_i,
    get,
    "/registry/instance/{projectAlias}/repositories",
    "GitFlic",
    "List service-wide repositories",
    params(("projectAlias" = String, Path,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,))
);
doc_op!(
    g_create_i,
    post,
    "/registry/instance/{projectAlias}/repositories",
    "GitFlic",
    "Create a service-wide repository",
    body = RepositoryRequest,
    params(("projectAlias" = String, Path,))
);
doc_op!(
    g_get_i,
    get,
    "/registry/instance/{projectAlias}/repositories/{uuid}",
    "GitFlic",
    "Get a service-wide repository",
    params(("projectAlias" = String, Path,), ("uuid" = String, Path,))
);
doc_op!(
    g_mod_i,
    put,
    "/registry/instance/repositories/{uuid}",
    "GitFlic",
    "Modify a service-wide repository",
    body = RepositoryRequest,
    params(("uuid" = String, Path,))
);
doc_op!(
    g_del_i,
    delete,
    "/registry/instance/repositories/{uuid}",
    "GitFlic",
    "Delete a service-wide repository",
    params(("uuid" = String, Path,))
);
// Arca's extension on a TRASH_CAN (every scope form serves it; the company and instance forms
// are declared).
doc_op!(
    g_trash_c,
    get,
    "/registry/company/{companyAlias}/repositories/{uuid}/trash",
    "GitFlic",
    "List the versions in a company's TRASH_CAN (Arca extension)",
    params(("companyAlias" = String, Path,), ("uuid" = String, Path,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,))
);
doc_op!(
    g_restore_c,
    post,
    "/registry/company/{companyAlias}/repositories/{uuid}/restore",
    "GitFlic",
    "Restore a version from a company's TRASH_CAN into its repository (Arca extension)",
    body = RestoreRequest,
    params(("companyAlias" = String, Path,), ("uuid" = String, Path,))
);
doc_op!(
    g_trash_i,
    get,
    "/registry/instance/repositories/{uuid}/trash",
    "GitFlic",
    "List the versions in the service-wide TRASH_CAN (Arca extension)",
    params(("uuid" = String, Path,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,))
);
doc_op!(
    g_restore_i,
    post,
    "/registry/instance/repositories/{uuid}/restore",
    "GitFlic",
    "Restore a version from the service-wide TRASH_CAN into its repository (Arca extension)",
    body = RestoreRequest,
    params(("uuid" = String, Path,))
);
// The other instance form of each operation (both forms serve every operation).
doc_op!(g_list_i2, get, "/registry/instance/repositories", "GitFlic", "List service-wide repositories",
    params(("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,)));
doc_op!(
    g_create_i2,
    post,
    "/registry/instance/repositories",
    "GitFlic",
    "Create a service-wide repository",
    body = RepositoryRequest
);
doc_op!(
    g_get_i2,
    get,
    "/registry/instance/repositories/{uuid}",
    "GitFlic",
    "Get a service-wide repository",
    params(("uuid" = String, Path,))
);
doc_op!(
    g_mod_i2,
    put,
    "/registry/instance/{projectAlias}/repositories/{uuid}",
    "GitFlic",
    "Modify a service-wide repository",
    body = RepositoryRequest,
    params(("projectAlias" = String, Path,), ("uuid" = String, Path,))
);
doc_op!(
    g_del_i2,
    delete,
    "/registry/instance/{projectAlias}/repositories/{uuid}",
    "GitFlic",
    "Delete a service-wide repository",
    params(("projectAlias" = String, Path,), ("uuid" = String, Path,))
);

doc_op!(g_pkgs_p, get, "/registry/project/{ownerAlias}/{projectAlias}/package", "GitFlic packages", "List packages of a project's registry repositories",
    params(("ownerAlias" = String, Path,), ("projectAlias" = String, Path,), ("page" = Option<i64>, Query,), ("size" = Option<i64>, Query,)));
doc_op!(
    g_pkg_p,
    get,
    "/registry/project/{ownerAlias}/{projectAlias}/package/{packageUuid}",
    "GitFlic packages",
    "Get a package",
    params(
        ("ownerAlias" = String, Path,),
        ("projectAlias" = String, Path,),
        ("packageUuid" = String, Path,)
    )
);
doc_op!(
    g_vers_p,
    get,
    "/registry/project/{ownerAlias}/{projectAlias}/package/{packageUuid}/version-list",
    "GitFlic packages",
    "List versions of a package with their files",
    params(
        ("ownerAlias" = String, Path,),
        ("projectAlias" = String, Path,),
        ("packageUuid" = String, Path,)
    )
);
doc_op!(
    g_pkgs_c,
    get,
    "/registry/company/{companyAlias}/package",
    "GitFlic packages",
    "List packages of a company's registry repositories",
    params(("companyAlias" = String, Path,))
);
doc_op!(
    g_pkg_c,
    get,
    "/registry/company/{companyAlias}/package/{packageUuid}",
    "GitFlic packages",
    "Get a package",
    params(
        ("companyAlias" = String, Path,),
        ("packageUuid" = String, Path,)
    )
);
doc_op!(
    g_vers_c,
    get,
    "/registry/company/{companyAlias}/package/{packageUuid}/version-list",
    "GitFlic packages",
    "List versions of a package",
    params(
        ("companyAlias" = String, Path,),
        ("packageUuid" = String, Path,)
    )
);
doc_op!(
    g_pkgs_i,
    get,
    "/registry/package",
    "GitFlic packages",
    "List packages of service-wide registry repositories"
);
doc_op!(
    g_pkg_i,
    get,
    "/registry/package/{packageUuid}",
    "GitFlic packages",
    "Get a package",
    params(("packageUuid" = String, Path,))
);
doc_op!(
    g_vers_i,
    get,
    "/registry/package/{packageUuid}/version-list",
    "GitFlic packages",
    "List versions of a package",
    params(("packageUuid" = String, Path,))
);

doc_op!(
    a_secret_set,
    post,
    "/arca/v1/secrets",
    "Arca secrets",
    "Set a secret in a space (admin of the space): {\"space\", \"identifier\", \"value\"}; the value is never returned"
);
doc_op!(
    a_secret_list,
    get,
    "/arca/v1/secrets",
    "Arca secrets",
    "List a space's secrets, without values",
    params(("space" = String, Query,))
);
doc_op!(
    a_secret_delete,
    delete,
    "/arca/v1/secrets",
    "Arca secrets",
    "Delete a secret",
    params(("space" = String, Query,), ("identifier" = String, Query,))
);
/// `POST /arca/v1/tokens` answers 201 (the only response carrying the secret).
#[utoipa::path(post, path = "/arca/v1/tokens", tag = "Arca tokens",
    summary = "Create an API token: 201 with id, token (shown only here), name, user, scope, role, createdAt, expiresAt",
    request_body = TokenRequest,
    params(("user" = Option<String>, Query, description = "Another user's name (admins, for users within their admin scope)")),
    responses((status = 201, description = "Created"), (status = 400, description = "Bad request"),
              (status = 401, description = "Unauthenticated or expired token"), (status = 403, description = "More than the caller may do"),
              (status = 404, description = "No such user")),
    security(("x-api-key" = [])))]
fn a_token_create() {}
doc_op!(a_token_list, get, "/arca/v1/tokens", "Arca tokens", "List API tokens (never their secrets)",
    params(("user" = Option<String>, Query, description = "Another user's name (admins)")));
/// `DELETE /arca/v1/tokens/{id}` answers 204.
#[utoipa::path(delete, path = "/arca/v1/tokens/{id}", tag = "Arca tokens", summary = "Revoke an API token",
    params(("id" = String, Path,), ("user" = Option<String>, Query, description = "The token's user (admins)")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "Unauthenticated"),
              (status = 403, description = "The signed-in token is narrower"), (status = 404, description = "No such token")),
    security(("x-api-key" = [])))]
fn a_token_revoke() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Arca",
        description = "Multi-format artifact registry: Harness and GitFlic management dialects, and Arca's own API tokens"
    ),
    paths(
        h_create,
        h_get,
        h_update,
        h_delete,
        h_artifacts,
        h_setup,
        h_labels,
        h_art_delete,
        h_art_summary,
        h_art_labels,
        h_versions,
        h_ver_delete,
        h_ver_summary,
        h_ver_details,
        h_files,
        h_file,
        h_space_regs,
        h_space_arts,
        g_list_p,
        g_create_p,
        g_get_p,
        g_mod_p,
        g_del_p,
        g_list_c,
        g_create_c,
        g_get_c,
        g_mod_c,
        g_del_c,
        g_list_i,
        g_create_i,
        g_get_i,
        g_mod_i,
        g_del_i,
        g_list_i2,
        g_create_i2,
        g_get_i2,
        g_mod_i2,
        g_del_i2,
        g_pkgs_p,
        g_pkg_p,
        g_vers_p,
        g_pkgs_c,
        g_pkg_c,
        g_vers_c,
        g_pkgs_i,
        g_pkg_i,
        g_vers_i,
        g_trash_c,
        g_restore_c,
        g_trash_i,
        g_restore_i,
        a_secret_set,
        a_secret_list,
        a_secret_delete,
        a_token_create,
        a_token_list,
        a_token_revoke
    ),
    components(schemas(
        RegistryRequest,
        CleanupPolicy,
        RepositoryRequest,
        LocalSettings,
        ProxySettingsDto,
        VirtualSettingsDto,
        RestoreRequest,
        TokenRequest
    ))
)]
struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
