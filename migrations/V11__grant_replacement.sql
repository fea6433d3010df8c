-- A new consent by the same person to the same client for the same resource replaces the
-- grant in force (issue #27) unless the person chose to keep both: the choice travels with
-- the code, and is applied when the code is exchanged (a code never exchanged replaces nothing).
ALTER TABLE oauth_codes ADD COLUMN keep_previous boolean NOT NULL DEFAULT false;
