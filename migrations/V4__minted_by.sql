-- A token made by another token (through the API with `write:tokens`) remembers its maker,
-- so revoking the maker revokes what it minted (DESIGN.md "Scopes and inheritance").
ALTER TABLE tokens ADD COLUMN minted_by uuid REFERENCES tokens (id);
CREATE INDEX tokens_minted_by ON tokens (minted_by) WHERE minted_by IS NOT NULL;
