-- Request fingerprints in `idempotency` were plain SHA-256 digests of the request (its
-- body included, so a registration's password could be found by trying passwords against
-- a copy of this table). They are keyed with a server secret from now on
-- (service/handling.py `fingerprint`); the old ones are dropped. A request retried with
-- its Idempotency-Key across this upgrade is taken as new (the window is seconds: keys
-- are for retries).
DELETE FROM idempotency;
