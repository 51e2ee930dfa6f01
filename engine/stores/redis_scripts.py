"""The Lua scripts behind RedisChallengeStore: each read-then-write operation as one atomic script.

Times arrive as ARGV strings (unix seconds; `now` is the caller's, never the server's clock),
and every TTL as a relative number of milliseconds computed from them: TTLs only clean up,
while expiry is always judged against ARGV `now`.
"""

from __future__ import annotations


class ChallengeScripts:
    # The challenge fields VERIFY returns, in its HMGET's order.
    VERIFIED_FIELDS = ("kind", "user_id", "client_id", "factors", "data", "expires_at", "attempts")

    # KEYS[1] - challenge hash   mfa:challenge:{challenge_id}
    # KEYS[2] - failures hash    mfa:failures:{attempt user_id}
    # KEYS[3] - last TOTP step   mfa:totp-step:{factor_id}
    # ARGV[1] - now
    # ARGV[2] - user_id (the factor's owner)
    # ARGV[3] - factor_id
    # ARGV[4] - factor type: "sms" | "otp" | "recovery"
    # ARGV[5] - proof: the sms code hash, the matched TOTP step or "" when none, "1" when the
    #           recovery code was consumed
    # ARGV[6] - max_attempts
    # ARGV[7] - lockout_threshold
    # ARGV[8] - now + lockout_seconds: the end of a lock
    # ARGV[9] - how long a failure streak is remembered, in milliseconds (TTL of the failures hash)
    # ARGV[11] - the hard cap of consecutive failures (MAX_CONSECUTIVE_FAILURES)
    # ARGV[10] - TTL of the last TOTP step in milliseconds
    # return {"locked", retry_after_seconds, 0}
    #      | {"invalid", 0, attempts_left}
    #      | {"ok", 0, 0, JSON array of the VERIFIED_FIELDS' values}: the consumed challenge, deleted
    #        (one reply element to parse, not two per field: the client's parser is Python)
    VERIFY = """
        local now = tonumber(ARGV[1])
        local factor_id, factor_type, proof = ARGV[3], ARGV[4], ARGV[5]
        local max_attempts, threshold = tonumber(ARGV[6]), tonumber(ARGV[7])

        -- Unknown, expired or another user's challenge: no failure is counted, or anyone could
        -- lock a victim out; and the lock is not looked at yet, or anyone could read whether a
        -- victim is locked.
        local challenge = redis.call('hmget', KEYS[1], 'user_id', 'expires_at', 'attempts', 'factors')
        if not challenge[1] or tonumber(challenge[2]) <= now or challenge[1] ~= ARGV[2] then
            return {'invalid', 0, 0}
        end

        -- Consecutive failures since the last success: a lock ends, the streak does not.
        local hard_cap = tonumber(ARGV[11])
        local failures = redis.call('hmget', KEYS[2], 'count', 'locked_until')
        local count = tonumber(failures[1]) or 0
        local locked_until = tonumber(failures[2]) or 0
        if count >= hard_cap then
            return {'locked', math.ceil(redis.call('pttl', KEYS[2]) / 1000), 0}
        end
        if locked_until > now then
            return {'locked', math.ceil(locked_until - now), 0}
        end

        local offered = false
        for _, factor in ipairs(cjson.decode(challenge[4])) do
            if factor.factor_id == factor_id and factor.type == factor_type then
                offered = true
            end
        end
        local attempts = tonumber(challenge[3]) or 0
        local passed = false
        if offered and attempts < max_attempts then
            if factor_type == 'sms' then
                -- Hashes (HMACs) are compared, not codes: a timing difference reveals nothing usable.
                local code = redis.call('hmget', KEYS[1], 'code:' .. factor_id, 'code_expires:' .. factor_id)
                passed = proof ~= '' and code[1] == proof and tonumber(code[2]) > now
            elseif factor_type == 'otp' then
                local step = tonumber(proof)
                local last = tonumber(redis.call('get', KEYS[3])) or -1
                passed = step ~= nil and step > last
            elseif factor_type == 'recovery' then
                passed = proof == '1'
            end
        end

        if passed then
            local fields = redis.call('hmget', KEYS[1], 'kind', 'user_id', 'client_id', 'factors', 'data',
                                      'expires_at', 'attempts')
            redis.call('del', KEYS[1], KEYS[2])
            if factor_type == 'otp' then
                redis.call('set', KEYS[3], proof, 'PX', ARGV[10])
            end
            return {'ok', 0, 0, cjson.encode(fields)}
        end

        attempts = redis.call('hincrby', KEYS[1], 'attempts', 1)
        if attempts >= max_attempts then
            redis.call('del', KEYS[1])
        end
        count = redis.call('hincrby', KEYS[2], 'count', 1)
        redis.call('pexpire', KEYS[2], ARGV[9])
        if count >= hard_cap then
            return {'locked', math.ceil(tonumber(ARGV[9]) / 1000), 0}
        end
        if count >= threshold then
            -- Past the threshold every failure locks again: one try per lockout period.
            redis.call('hset', KEYS[2], 'locked_until', ARGV[8])
            return {'locked', math.ceil(tonumber(ARGV[8]) - now), 0}
        end
        return {'invalid', 0, math.max(max_attempts - attempts, 0)}
    """

    # KEYS[1] - challenge hash   mfa:challenge:{challenge_id}
    # ARGV[1] - now
    # ARGV[2] - factor_id
    # ARGV[3] - code hash
    # ARGV[4] - now + code_ttl_seconds: when the code expires
    # ARGV[5] - cooldown_seconds
    # return {"stored", 0} | {"cooldown", retry_after_seconds} | {"missing", 0}
    # A resend replaces the code and its expiry; `attempts` is never touched.
    PUT_CODE = """
        local now = tonumber(ARGV[1])
        local factor_id = ARGV[2]
        local challenge = redis.call('hmget', KEYS[1], 'expires_at', 'factors', 'sent_at:' .. factor_id)
        if not challenge[1] or tonumber(challenge[1]) <= now then
            return {'missing', 0}
        end
        local offered = false
        for _, factor in ipairs(cjson.decode(challenge[2])) do
            if factor.factor_id == factor_id then
                offered = true
            end
        end
        if not offered then
            return {'missing', 0}
        end
        if challenge[3] then
            local remaining = tonumber(ARGV[5]) - (now - tonumber(challenge[3]))
            if remaining > 0 then
                return {'cooldown', math.ceil(remaining)}
            end
        end
        redis.call('hset', KEYS[1], 'code:' .. factor_id, ARGV[3], 'code_expires:' .. factor_id, ARGV[4],
                   'sent_at:' .. factor_id, ARGV[1])
        return {'stored', 0}
    """

    # KEYS[1..n] - counter hashes   mfa:rate:{name}
    # ARGV[1] - now
    # ARGV[3i - 1] - counter i's limit
    # ARGV[3i] - now + counter i's window_seconds: the end of a new window
    # ARGV[3i + 1] - counter i's window in milliseconds (TTL of a new window)
    # return 0 when every counter took one hit, else the seconds until the last full counter's
    # window ends (and no counter was touched: all or none)
    TAKE = """
        local now = tonumber(ARGV[1])
        local wait = 0
        for i, key in ipairs(KEYS) do
            local window = redis.call('hmget', key, 'count', 'ends_at')
            local ends_at = tonumber(window[2])
            if ends_at and ends_at > now and tonumber(window[1]) >= tonumber(ARGV[3 * i - 1]) then
                wait = math.max(wait, math.ceil(ends_at - now))
            end
        end
        if wait > 0 then
            return wait
        end
        for i, key in ipairs(KEYS) do
            local ends_at = tonumber(redis.call('hget', key, 'ends_at'))
            if ends_at and ends_at > now then
                redis.call('hincrby', key, 'count', 1)
            else
                redis.call('hset', key, 'count', 1, 'ends_at', ARGV[3 * i])
                redis.call('pexpire', key, ARGV[3 * i + 1])
            end
        end
        return 0
    """

    # KEYS[1..n] - counter hashes   mfa:rate:{name}
    # ARGV[1] - now
    # return 0, having given back one hit in every counter whose window is still open and whose
    # count is above zero (a window that has ended is not revived)
    REFUND = """
        local now = tonumber(ARGV[1])
        for _, key in ipairs(KEYS) do
            local window = redis.call('hmget', key, 'count', 'ends_at')
            local ends_at = tonumber(window[2])
            if ends_at and ends_at > now and (tonumber(window[1]) or 0) > 0 then
                redis.call('hincrby', key, 'count', -1)
            end
        end
        return 0
    """
