-- Issue 10 item 3: the mini-programs a host-app client may mint
-- wx.login-shaped codes for; a host app mints codes for no other.
CREATE TABLE client_hosted_apps (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    appid TEXT NOT NULL REFERENCES wechat_apps(appid) ON DELETE CASCADE,
    PRIMARY KEY (client_id, appid)
);
-- Issue 10 item 10: the token response a refresh token was rotated into,
-- sealed with the master key, so a replay inside the grace window gets the
-- same successor tokens (cleared once the window has passed).
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed TEXT;
