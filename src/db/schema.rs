//! Table definitions, kept by hand in step with migrations/{sqlite,postgres}.

diesel::table! {
    accounts (id) {
        id -> Text,
        username -> Text,
        username_key -> Text,
        display_name -> Nullable<Text>,
        email -> Nullable<Text>,
        email_verified -> Bool,
        phone -> Nullable<Text>,
        phone_verified -> Bool,
        status -> Text,
        password_hash -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        merged_into -> Nullable<Text>,
    }
}

diesel::table! {
    account_roles (account_id, role) {
        account_id -> Text,
        role -> Text,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        account_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        auth_time -> Timestamp,
        amr -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    login_throttle (throttle_key) {
        throttle_key -> Text,
        failures -> Integer,
        window_started_at -> Timestamp,
        blocked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        category -> Text,
        action -> Text,
        outcome -> Text,
        reason -> Nullable<Text>,
        actor -> Nullable<Text>,
        account_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
        link_version -> Integer,
        content_salt -> Nullable<Text>,
        content_hash -> Nullable<Text>,
        pruned_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_chain_head (id) {
        id -> Integer,
        last_seq -> BigInt,
        last_hash -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_pending (pending_id) {
        pending_id -> BigInt,
        id -> Text,
        occurred_at -> Timestamp,
        category -> Text,
        action -> Text,
        outcome -> Text,
        reason -> Nullable<Text>,
        actor -> Nullable<Text>,
        account_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    audit_keys (id) {
        id -> Text,
        public_key -> Text,
        sealed_private_key -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        head_hash -> Text,
        signed_at -> Timestamp,
        prev_checkpoint_hash -> Nullable<Text>,
        key_id -> Text,
        signature -> Text,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(account_roles -> accounts (account_id));
diesel::joinable!(sessions -> accounts (account_id));
diesel::allow_tables_to_appear_in_same_query!(accounts, account_roles, sessions);

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        is_public -> Bool,
        first_party -> Bool,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        id_token_signing_alg -> Text,
        always_issue_refresh_token -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        wechat_appid -> Nullable<Text>,
        host_app -> Bool,
        trusted_host_client -> Nullable<Text>,
        access_token_signing_alg -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
    }
}

diesel::table! {
    client_hosted_apps (client_id, appid) {
        client_id -> Text,
        appid -> Text,
    }
}

diesel::table! {
    host_codes (code_hash) {
        code_hash -> Text,
        account_id -> Text,
        appid -> Text,
        host_client_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        publish_until -> Nullable<Timestamp>,
        not_before_signing -> Nullable<Timestamp>,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        account_id -> Nullable<Text>,
        scope -> Text,
        auth_time -> Nullable<Timestamp>,
        amr -> Text,
        sid -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        tokens_issued -> Bool,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        consumed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        successor_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    consents (account_id, client_id) {
        account_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    backchannel_logouts (id) {
        id -> Text,
        client_id -> Text,
        subject -> Text,
        sid -> Text,
        cause -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(grants -> clients (client_id));
diesel::allow_tables_to_appear_in_same_query!(grants, clients);

diesel::joinable!(authorization_codes -> grants (grant_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::allow_tables_to_appear_in_same_query!(grants, authorization_codes, refresh_tokens);

diesel::table! {
    wechat_apps (appid) {
        appid -> Text,
        kind -> Text,
        name -> Text,
        open_platform -> Nullable<Text>,
        redirect_domain -> Nullable<Text>,
        secret -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    wechat_identities (id) {
        id -> Text,
        platform_key -> Text,
        open_platform -> Nullable<Text>,
        unionid -> Nullable<Text>,
        account_id -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        phone -> Nullable<Text>,
        phone_verified_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    wechat_openids (appid, openid) {
        appid -> Text,
        openid -> Text,
        identity_id -> Text,
        session_key -> Nullable<Text>,
        created_at -> Timestamp,
        last_login_at -> Timestamp,
    }
}

diesel::table! {
    wechat_app_tokens (appid) {
        appid -> Text,
        access_token -> Text,
        expires_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    wechat_login_states (state_hash) {
        state_hash -> Text,
        browser_hash -> Text,
        appid -> Text,
        return_to -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    wechat_pending_binds (token_hash) {
        token_hash -> Text,
        browser_hash -> Text,
        identity_id -> Text,
        return_to -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(wechat_openids -> wechat_identities (identity_id));
diesel::allow_tables_to_appear_in_same_query!(wechat_identities, wechat_openids);

// The admin console filters accounts by whether they have a WeChat identity.
diesel::allow_tables_to_appear_in_same_query!(accounts, wechat_identities);
