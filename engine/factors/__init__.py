"""Second factors, one module each: totp (authenticator apps), sms (one-time codes), recovery codes."""
