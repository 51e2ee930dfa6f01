"""The route table: every endpoint of the service, in one place."""

from __future__ import annotations

from starlette.routing import Route

from engine.http import admin, decisions, endpoints, mfa

ROUTES = [
    Route("/v1/evaluate", endpoints.evaluate, methods=["POST"], name="evaluate"),
    Route("/v1/login", mfa.login, methods=["POST"], name="login"),
    Route("/v1/mfa/challenge", mfa.challenge, methods=["POST"], name="mfa_challenge"),
    Route("/v1/mfa/verify", mfa.verify, methods=["POST"], name="mfa_verify"),
    Route("/v1/mfa/enroll", mfa.enroll, methods=["POST"], name="mfa_enroll"),
    Route("/v1/mfa/enroll/confirm", mfa.confirm, methods=["POST"], name="mfa_enroll_confirm"),
    Route("/v1/mfa/recovery-codes", mfa.recovery_codes, methods=["POST"], name="mfa_recovery_codes"),
    Route("/.well-known/jwks.json", mfa.jwks, methods=["GET"], name="jwks"),
    Route("/admin/users", admin.create_user, methods=["POST"], name="admin_create_user"),
    Route("/admin/users", admin.list_users, methods=["GET"], name="admin_list_users"),
    Route("/admin/users/{user_id}", admin.get_user, methods=["GET"], name="admin_get_user"),
    Route("/admin/users/{user_id}", admin.update_user, methods=["PATCH"], name="admin_update_user"),
    Route("/admin/users/{user_id}", admin.delete_user, methods=["DELETE"], name="admin_delete_user"),
    Route("/admin/users/{user_id}/factors", admin.list_factors, methods=["GET"], name="admin_list_factors"),
    Route("/admin/users/{user_id}/factors", admin.add_factor, methods=["POST"], name="admin_add_factor"),
    Route("/admin/users/{user_id}/factors/{factor_id}", admin.delete_factor, methods=["DELETE"],
          name="admin_delete_factor"),
    Route("/admin/users/{user_id}/reset-mfa", admin.reset_mfa, methods=["POST"], name="admin_reset_mfa"),
    Route("/admin/decisions/{decision_id}", decisions.get_decision, methods=["GET"], name="admin_get_decision"),
    Route("/healthz", endpoints.healthz, methods=["GET"], name="healthz"),
]
