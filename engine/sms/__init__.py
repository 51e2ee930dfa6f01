"""SMS gateways behind one Protocol: console (development), Twilio, webhook; a recording one for tests."""
