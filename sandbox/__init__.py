"""Generic restricted execution of untrusted Python functions; knows nothing about MFA.

Plain data goes in (str, int, float, bool, None, lists, dicts), plain data comes out.
"""
