"""The formats of text the engine accepts: identifiers, usernames, phone numbers, rule ids, and the
characters free text and secrets may carry.

One definition of each, shared by the HTTP schema, the CLI, the directory and the configuration,
so that a value refused at one door is refused at every door. Two rules hold throughout:

- Patterns are matched whole, with `fullmatch`. `re.match(r"^...$")` also accepts a final "\\n"
  (`$` matches before it): `"transaction\\n"` passed the action check and skipped the step-up
  rule, and `carol\\n` became a second working account next to `carol` (issue 6, item 9).
- Character classes are spelled in ASCII (`[0-9]`, never `\\d`, which takes the digits of every
  script: `"\\u0661\\u0660-rule"` was a rule id).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Usernames the directory stores: ASCII letters, digits and . _ @ + -, starting with a letter or
# digit. Logins still match case-insensitively after NFKC (stores/sqlite.py: username_key).
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
PHONE_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166 alpha-2
ACTION = re.compile(r"[a-z][a-z0-9_]{0,63}")  # context.action: "login", "transaction"...
# Ids the engine hands out (usr_, fac_, challenge and enrollment ids: secrets.token_urlsafe).
OPAQUE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# Applications of the hosted login pages (config `clients:` keys, /login?client_id=, /v1/token).
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_REDIRECT_URI_LENGTH = 2048  # as /v1/token's redirect_uri
REDIRECT_URI_RULE = ("each must be an https:// URL (http:// only to a loopback host) of at most 2048 characters, "
                     "in ASCII, without a fragment, user info, spaces or backslashes")
# The authority a redirect URI may have: a DNS name or an IP address, and a port. Its origin goes
# into the pages' Content-Security-Policy header as it is (engine/pages/render.py), so nothing that
# could end a source there (; ,) or that a header cannot carry (non-ASCII: IDNs in punycode).
_REDIRECT_AUTHORITY = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")  # branding colours: six hex digits, nothing CSS could misread
BASE32_SECRET = re.compile(r"[A-Z2-7]{16,128}=*")
# The stem of rules/NN-name.py. Bounded: the order is an int (int() refuses 4,300 digits), and
# the id is a file name, a log label and a metric label.
RULE_ID = re.compile(r"(?P<order>[0-9]{2,9})-(?P<name>[a-z0-9][a-z0-9-]{0,63})")
# A DNS name (letters, digits, hyphens, underscores; no empty label, no hyphen at a label's ends),
# optionally fully qualified. No port, path, user info or spaces: rules build URLs from it.
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")

# C0 and C1 controls (Cc), line and paragraph separators (Zl, Zp: U+2028 and U+2029 end lines in
# JavaScript and in many log viewers), lone surrogates (not encodable; SQLite would raise).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
# Bidirectional embeddings, overrides and isolates: they reorder how text is shown ("Trojan
# Source", CVE-2021-42574), so an admin screen or a log line can show a name that is not there.
_BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
_NOT_IN_FREE_TEXT = re.compile(f"[{_CONTROLS}{_BIDI_CONTROLS}]")
_NOT_IN_SECRETS = re.compile(f"[{_CONTROLS}]")


def is_identifier(text: str) -> bool:
    """Printable (`str.isprintable`: no character of the Unicode categories Cc, Cf, Cs, Co, Cn, Zl,
    Zp, and no Zs but the ASCII space) and no space at either end: two identifiers that look the
    same are the same string. Zero-width characters, joiners, bidi marks, no-break spaces and
    trailing line breaks are all refused."""
    return text.isprintable() and text.strip(" ") == text


def is_free_text(text: str) -> bool:
    """What people and browsers write (display names, user agents): any printable text,
    including emoji sequences (ZWJ), joiners in Persian and Indic names (ZWNJ), no-break spaces
    and left-to-right/right-to-left marks; no controls, line separators or bidi overrides."""
    return _NOT_IN_FREE_TEXT.search(text) is None


def is_secret_text(text: str) -> bool:
    """Passwords: anything a user can type (NIST SP 800-63B 5.1.1.2: every printing character,
    spaces and Unicode), format characters included, but no controls or line separators: a
    password ending in "\\n" comes from a paste or an `echo`, and nobody could type it at a login
    form."""
    return _NOT_IN_SECRETS.search(text) is None


def is_redirect_uri(uri: str) -> bool:
    """Whether a hosted-pages client may register `uri` as a redirect URI (config `clients:` and the
    admin API alike). They are matched exactly, so each must be one absolute URL: https, or http to
    a loopback host (RFC 8252 7.3, native and development apps); no fragment, no user info. ASCII
    (RFC 3986) and no backslash, which browsers read as a slash: the URI the engine checks is the
    one the browser follows."""
    if not is_identifier(uri) or not uri.isascii() or " " in uri or "\\" in uri \
            or len(uri) > MAX_REDIRECT_URI_LENGTH or not uri.startswith(("https://", "http://")):
        return False
    try:
        parts = urlsplit(uri)
        hostname, port = parts.hostname, parts.port
    except ValueError:  # an unbalanced [ in the host, a port that is no number or past 65535
        return False
    loopback = hostname in ("127.0.0.1", "localhost", "::1")
    return (parts.scheme == "https" or loopback) and bool(hostname) and port != 0 \
        and _REDIRECT_AUTHORITY.fullmatch(parts.netloc) is not None and not parts.fragment and "#" not in uri
