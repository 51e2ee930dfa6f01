"""The route table: every endpoint of the service, in one place."""

from __future__ import annotations

from starlette.routing import Route

from engine.http import (
    admin, api_docs, audit_admin, clients_admin, decisions, endpoints, metrics, mfa, rules_admin, settings_admin,
    token,
)
from engine.http.admin import admin_only

# Every /admin route needs the admin token: declared here once, by admin_only, for all of them.
ADMIN = [
    ("/users", admin.create_user, "POST", "admin_create_user"),
    ("/users", admin.list_users, "GET", "admin_list_users"),
    ("/users/{user_id}", admin.get_user, "GET", "admin_get_user"),
    ("/users/{user_id}", admin.update_user, "PATCH", "admin_update_user"),
    ("/users/{user_id}", admin.delete_user, "DELETE", "admin_delete_user"),
    ("/users/{user_id}/factors", admin.list_factors, "GET", "admin_list_factors"),
    ("/users/{user_id}/factors", admin.add_factor, "POST", "admin_add_factor"),
    ("/users/{user_id}/factors/{factor_id}", admin.delete_factor, "DELETE", "admin_delete_factor"),
    ("/users/{user_id}/reset-mfa", admin.reset_mfa, "POST", "admin_reset_mfa"),
    ("/users/{user_id}/remembered-browsers", admin.list_remembered_browsers, "GET", "admin_list_remembered_browsers"),
    ("/users/{user_id}/remembered-browsers", admin.forget_remembered_browsers, "DELETE",
     "admin_forget_remembered_browsers"),
    ("/users/{user_id}/remembered-browsers/{browser_id}", admin.forget_remembered_browser, "DELETE",
     "admin_forget_remembered_browser"),
    ("/clients", clients_admin.list_clients, "GET", "admin_list_clients"),
    ("/clients/{client_id}", clients_admin.get_client, "GET", "admin_get_client"),
    ("/clients/{client_id}", clients_admin.put_client, "PUT", "admin_put_client"),
    ("/clients/{client_id}", clients_admin.delete_client, "DELETE", "admin_delete_client"),
    ("/decisions/{decision_id}", decisions.get_decision, "GET", "admin_get_decision"),
    ("/audit", audit_admin.list_audit_events, "GET", "admin_list_audit_events"),
    ("/rules", rules_admin.list_rules, "GET", "admin_list_rules"),
    ("/rules", rules_admin.apply_rules, "POST", "admin_apply_rules"),
    ("/rules/reload", rules_admin.reload_rules, "POST", "admin_reload_rules"),
    ("/rules/versions", rules_admin.list_versions, "GET", "admin_rule_versions"),
    ("/rules/rollback", rules_admin.rollback, "POST", "admin_rollback_rules"),
    ("/rules/dry-run", rules_admin.dry_run, "POST", "admin_dry_run_rules"),
    ("/rules/settings", settings_admin.list_settings, "GET", "admin_list_rule_settings"),
    ("/rules/settings/{key}", settings_admin.get_setting, "GET", "admin_get_rule_setting"),
    ("/rules/settings/{key}", settings_admin.put_setting, "PUT", "admin_put_rule_setting"),
    ("/rules/settings/{key}", settings_admin.delete_setting, "DELETE", "admin_delete_rule_setting"),
    ("/rules/{rule_id}", rules_admin.get_rule, "GET", "admin_get_rule"),
    ("/rules/{rule_id}", rules_admin.put_rule, "PUT", "admin_put_rule"),
    ("/rules/{rule_id}", rules_admin.patch_rule, "PATCH", "admin_patch_rule"),
    ("/rules/{rule_id}", rules_admin.delete_rule, "DELETE", "admin_delete_rule"),
]

ROUTES = [
    Route("/v1/evaluate", endpoints.evaluate, methods=["POST"], name="evaluate"),
    Route("/v1/login", mfa.login, methods=["POST"], name="login"),
    Route("/v1/mfa/challenge", mfa.challenge, methods=["POST"], name="mfa_challenge"),
    Route("/v1/mfa/verify", mfa.verify, methods=["POST"], name="mfa_verify"),
    Route("/v1/mfa/enroll", mfa.enroll, methods=["POST"], name="mfa_enroll"),
    Route("/v1/mfa/enroll/confirm", mfa.confirm, methods=["POST"], name="mfa_enroll_confirm"),
    Route("/v1/mfa/recovery-codes", mfa.recovery_codes, methods=["POST"], name="mfa_recovery_codes"),
    Route("/v1/step-up", mfa.step_up, methods=["POST"], name="step_up"),
    Route("/v1/token", token.token, methods=["POST"], name="token"),
    Route("/.well-known/jwks.json", mfa.jwks, methods=["GET"], name="jwks"),
    *(Route(f"/admin{path}", admin_only(endpoint), methods=[method], name=name)
      for path, endpoint, method, name in ADMIN),
    # A settings path that is no key (`a/b`, `../x`) is a 400 naming `key`.
    Route("/admin/rules/settings/{key_path:path}", admin_only(settings_admin.bad_setting_path),
          methods=["GET", "PUT", "DELETE"], name="admin_bad_rule_setting_path"),
    # Last: a path that is no rule id (`a/b`, `../x`) is a 400 naming `id`, not a routing 404.
    Route("/admin/rules/{rule_path:path}", admin_only(rules_admin.bad_rule_path),
          methods=["GET", "PUT", "PATCH", "DELETE"], name="admin_bad_rule_path"),
    Route("/healthz", endpoints.healthz, methods=["GET"], name="healthz"),
    Route("/metrics", metrics.metrics, methods=["GET"], name="metrics"),
    # The API document, written from this table and the declarations (engine/http/openapi.py), and its page.
    Route("/openapi.json", api_docs.openapi_json, methods=["GET"], name="openapi"),
    Route("/docs", api_docs.docs, methods=["GET"], name="docs"),
]
