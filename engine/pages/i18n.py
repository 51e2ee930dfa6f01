"""The pages' texts in each language, and which language a request gets.

English is built in and complete; German proves the mechanism. `branding.texts` replaces any
text per locale (a key or locale the pages do not have stops startup). A request gets
`?ui_locales=` (OpenID Connect: space-separated, in order of preference) if it names one, else
the locale the login started with, else the best of Accept-Language, else English. Texts take
`{name}` placeholders, filled with escaped values by the templates (never str.format: a
branding text could otherwise reach attributes)."""

from __future__ import annotations

import re
from collections.abc import Mapping

DEFAULT_LOCALE = "en"

EN: dict[str, str] = {
    "sign_in_to": "Sign in to {client}",
    "title_password": "Sign in",
    "username": "Username",
    "password": "Password",
    "code": "Code",
    "sign_in": "Sign in",
    "continue": "Continue",
    "verify": "Verify",
    "error_prefix": "Error:",
    "error_credentials": "The username or password is not right.",
    "error_username_required": "Enter your username.",
    "error_password_required": "Enter your password.",
    "title_factor": "Confirm it is you",
    "factor_intro": "Choose how to confirm this sign-in.",
    "step_up_intro": "To continue with {action}, confirm it is you.",
    "factor_otp": "Authenticator app",
    "factor_sms": "Text message to {phone}",
    "factor_recovery": "Use a recovery code",
    "use_another": "Use another method",
    "title_code": "Enter your code",
    "code_sent_sms": "We sent a code by text message to {phone}.",
    "code_otp": "Open your authenticator app and enter the 6-digit code it shows.",
    "code_hint": "6 digits",
    "resend": "Send a new code",
    "resend_wait": "Did not get it? You can ask for a new code {seconds} seconds after the last one.",
    "resend_too_soon": "A code was sent moments ago. Wait {seconds} seconds, then ask again.",
    "remember": "Remember this browser for {days} days",
    "error_code": "That code is not right. Attempts left: {attempts}.",
    "error_code_required": "Enter the code.",
    "title_recovery": "Use a recovery code",
    "recovery_intro": "Enter one of the recovery codes you saved when you set up your second factor. Each code works once.",
    "recovery_code": "Recovery code",
    "title_enroll": "Set up a second factor",
    "enroll_intro": "Your account needs a second way to confirm it is you. Choose one:",
    "enroll_otp": "Authenticator app",
    "enroll_sms": "Text message (SMS)",
    "title_enroll_otp": "Set up your authenticator app",
    "enroll_otp_scan": "Scan this QR code with your authenticator app, or type the key below into it.",
    "enroll_otp_secret": "Key",
    "enroll_otp_confirm": "Then enter the 6-digit code the app shows.",
    "qr_alt": "QR code to scan with your authenticator app",
    "enroll_restart": "Start over with a new QR code",
    "title_enroll_phone": "Set up text messages",
    "phone": "Phone number",
    "phone_hint": "With the country code, for example +1 415 555 0123.",
    "send_code": "Send code",
    "error_phone": "Enter a valid phone number with its country code.",
    "error_phone_country": "Text messages to this country are not available.",
    "title_recovery_codes": "Save your recovery codes",
    "recovery_codes_intro": "If you lose your phone or app, each of these codes lets you sign in once. They are shown only now: copy or download them and keep them somewhere safe.",
    "copy": "Copy",
    "copied": "Copied",
    "download": "Download",
    "title_locked": "Too many attempts",
    "locked_body": "For your security, signing in is paused. Try again in {minutes} minutes.",
    "title_expired": "This sign-in has expired",
    "expired_body": "A sign-in must be finished within a few minutes, and a code can be tried only a few times. Start again.",
    "expired_no_session": "Go back to the application and sign in again.",
    "start_again": "Start again",
    "title_denied": "Sign-in refused",
    "denied_body": "This sign-in was refused. Reason: {reason}",
    "title_unavailable": "Service unavailable",
    "unavailable_body": "We cannot sign you in right now. Try again in a moment.",
    "title_bad_request": "This sign-in link is not valid",
    "bad_client": "The application that sent you here is not known, or sent you to an address it has not registered.",
    "pkce_required": "This application must send a PKCE code challenge (S256).",
    "title_forbidden": "This form was not accepted",
    "csrf_body": "The form had expired or was altered. Start again.",
    "factor_unavailable": "The text message could not be sent. Try again, or use another method.",
    "sms_limit": "Too many codes were sent. Try again in {minutes} minutes, or use another method.",
    "support": "Need help?",
    "title_error": "Something went wrong",
    "error_body": "Something went wrong on our side. Start again.",
    "title_account": "Account security",
    "account_sign_in_first": "Sign in through your application first, then come back here.",
    "account_fresh_note": "Each change asks you to confirm it is you first.",
    "account_factors": "Your second factors",
    "account_none": "No second factor yet.",
    "account_codes_left": "Recovery codes left: {count}",
    "account_add_app": "Add an authenticator app",
    "account_add_phone": "Add this phone",
    "account_new_codes": "Make new recovery codes",
    "account_remove": "Remove",
    "account_back": "Back to account security",
    "account_needs_factor": "This change needs a sign-in that passed a second factor. Sign in again through your application.",
    "account_refused": "This change could not be made. Check what you entered and try again.",
}

DE: dict[str, str] = {
    "sign_in_to": "Bei {client} anmelden",
    "title_password": "Anmelden",
    "username": "Benutzername",
    "password": "Passwort",
    "code": "Code",
    "sign_in": "Anmelden",
    "continue": "Weiter",
    "verify": "Bestätigen",
    "error_prefix": "Fehler:",
    "error_credentials": "Benutzername oder Passwort ist nicht richtig.",
    "error_username_required": "Geben Sie Ihren Benutzernamen ein.",
    "error_password_required": "Geben Sie Ihr Passwort ein.",
    "title_factor": "Bestätigen Sie, dass Sie es sind",
    "factor_intro": "Wählen Sie, wie Sie diese Anmeldung bestätigen.",
    "step_up_intro": "Bestätigen Sie, dass Sie es sind, um mit {action} fortzufahren.",
    "factor_otp": "Authenticator-App",
    "factor_sms": "SMS an {phone}",
    "factor_recovery": "Wiederherstellungscode verwenden",
    "use_another": "Andere Methode verwenden",
    "title_code": "Code eingeben",
    "code_sent_sms": "Wir haben Ihnen einen Code per SMS an {phone} gesendet.",
    "code_otp": "Öffnen Sie Ihre Authenticator-App und geben Sie den 6-stelligen Code ein.",
    "code_hint": "6 Ziffern",
    "resend": "Neuen Code senden",
    "resend_wait": "Nichts erhalten? Einen neuen Code können Sie {seconds} Sekunden nach dem letzten anfordern.",
    "resend_too_soon": "Gerade wurde ein Code gesendet. Warten Sie {seconds} Sekunden und fordern Sie dann einen neuen an.",
    "remember": "Diesen Browser {days} Tage lang merken",
    "error_code": "Dieser Code ist nicht richtig. Verbleibende Versuche: {attempts}.",
    "error_code_required": "Geben Sie den Code ein.",
    "title_recovery": "Wiederherstellungscode verwenden",
    "recovery_intro": "Geben Sie einen der Wiederherstellungscodes ein, die Sie beim Einrichten gespeichert haben. Jeder Code gilt einmal.",
    "recovery_code": "Wiederherstellungscode",
    "title_enroll": "Zweiten Faktor einrichten",
    "enroll_intro": "Ihr Konto braucht einen zweiten Weg, um zu bestätigen, dass Sie es sind. Wählen Sie:",
    "enroll_otp": "Authenticator-App",
    "enroll_sms": "SMS",
    "title_enroll_otp": "Authenticator-App einrichten",
    "enroll_otp_scan": "Scannen Sie diesen QR-Code mit Ihrer Authenticator-App oder tippen Sie den Schlüssel unten ein.",
    "enroll_otp_secret": "Schlüssel",
    "enroll_otp_confirm": "Geben Sie dann den 6-stelligen Code aus der App ein.",
    "qr_alt": "QR-Code für Ihre Authenticator-App",
    "enroll_restart": "Mit neuem QR-Code neu beginnen",
    "title_enroll_phone": "SMS einrichten",
    "phone": "Telefonnummer",
    "phone_hint": "Mit Ländervorwahl, zum Beispiel +49 30 1234567.",
    "send_code": "Code senden",
    "error_phone": "Geben Sie eine gültige Telefonnummer mit Ländervorwahl ein.",
    "error_phone_country": "SMS in dieses Land sind nicht verfügbar.",
    "title_recovery_codes": "Wiederherstellungscodes speichern",
    "recovery_codes_intro": "Wenn Sie Ihr Telefon oder Ihre App verlieren, können Sie sich mit jedem dieser Codes einmal anmelden. Sie werden nur jetzt angezeigt: Kopieren oder laden Sie sie herunter und bewahren Sie sie sicher auf.",
    "copy": "Kopieren",
    "copied": "Kopiert",
    "download": "Herunterladen",
    "title_locked": "Zu viele Versuche",
    "locked_body": "Zu Ihrer Sicherheit ist die Anmeldung pausiert. Versuchen Sie es in {minutes} Minuten erneut.",
    "title_expired": "Diese Anmeldung ist abgelaufen",
    "expired_body": "Eine Anmeldung muss innerhalb weniger Minuten abgeschlossen werden, und ein Code kann nur wenige Male versucht werden. Beginnen Sie neu.",
    "expired_no_session": "Kehren Sie zur Anwendung zurück und melden Sie sich erneut an.",
    "start_again": "Neu beginnen",
    "title_denied": "Anmeldung abgelehnt",
    "denied_body": "Diese Anmeldung wurde abgelehnt. Grund: {reason}",
    "title_unavailable": "Dienst nicht verfügbar",
    "unavailable_body": "Wir können Sie gerade nicht anmelden. Versuchen Sie es gleich noch einmal.",
    "title_bad_request": "Dieser Anmeldelink ist nicht gültig",
    "bad_client": "Die Anwendung, die Sie hierher geschickt hat, ist unbekannt oder hat eine nicht registrierte Adresse angegeben.",
    "pkce_required": "Diese Anwendung muss eine PKCE-Code-Challenge (S256) senden.",
    "title_forbidden": "Dieses Formular wurde nicht angenommen",
    "csrf_body": "Das Formular war abgelaufen oder wurde verändert. Beginnen Sie neu.",
    "factor_unavailable": "Die SMS konnte nicht gesendet werden. Versuchen Sie es erneut oder verwenden Sie eine andere Methode.",
    "sms_limit": "Es wurden zu viele Codes gesendet. Versuchen Sie es in {minutes} Minuten erneut oder verwenden Sie eine andere Methode.",
    "support": "Hilfe?",
    "title_error": "Etwas ist schiefgelaufen",
    "error_body": "Bei uns ist etwas schiefgelaufen. Beginnen Sie neu.",
    "title_account": "Kontosicherheit",
    "account_sign_in_first": "Melden Sie sich zuerst über Ihre Anwendung an und kommen Sie dann hierher zurück.",
    "account_fresh_note": "Vor jeder Änderung bestätigen Sie, dass Sie es sind.",
    "account_factors": "Ihre zweiten Faktoren",
    "account_none": "Noch kein zweiter Faktor.",
    "account_codes_left": "Verbleibende Wiederherstellungscodes: {count}",
    "account_add_app": "Authenticator-App hinzufügen",
    "account_add_phone": "Diese Telefonnummer hinzufügen",
    "account_new_codes": "Neue Wiederherstellungscodes erstellen",
    "account_remove": "Entfernen",
    "account_back": "Zurück zur Kontosicherheit",
    "account_needs_factor": "Diese Änderung braucht eine Anmeldung mit zweitem Faktor. Melden Sie sich erneut über Ihre Anwendung an.",
    "account_refused": "Diese Änderung war nicht möglich. Prüfen Sie Ihre Eingabe und versuchen Sie es erneut.",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "de": DE}
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_LANGUAGE_RANGE = re.compile(r"\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([01](?:\.[0-9]{0,3})?))?\s*")


class UnknownText(ValueError):
    """branding.texts names a locale or a text the pages do not have."""


def catalogues(overrides: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The built-in texts with branding.texts laid over them."""
    merged = {locale: dict(texts) for locale, texts in CATALOGUES.items()}
    for locale, texts in overrides.items():
        if locale not in merged:
            raise UnknownText(f"branding.texts.{locale}: the pages speak {', '.join(merged)}")
        for key, value in texts.items():
            if key not in EN:
                raise UnknownText(f"branding.texts.{locale}.{key}: no such text")
            merged[locale][key] = value
    return merged


def fill(text: str, values: Mapping[str, object]) -> str:
    """`{name}` placeholders replaced by values (unknown ones left as written)."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)


def from_ui_locales(ui_locales: str | None) -> str | None:
    for tag in (ui_locales or "").split():
        language = tag.split("-")[0].lower()
        if language in CATALOGUES:
            return language
    return None


def from_accept_language(header: str | None) -> str:
    """The supported language the browser prefers most (RFC 9110 12.5.4 weights), else English."""
    best, best_weight = DEFAULT_LOCALE, 0.0
    for item in (header or "")[:512].split(",")[:32]:
        matched = _LANGUAGE_RANGE.fullmatch(item)
        if matched is None:
            continue
        language, weight = matched.group(1).lower(), float(matched.group(2) or 1)
        # Strictly greater: of equal weights the earlier wins, as the browser lists them in order.
        if language in CATALOGUES and weight > best_weight:
            best, best_weight = language, weight
    return best
