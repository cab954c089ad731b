# Pages everyone sees: sign in, consent, sign out, errors.
# Message ids: <page>-<what>. Keep zh-CN/common.ftl in step (a test checks).

brand = wxfed
language-switch = Language

## Errors
error-bad-request-title = Bad request
error-forbidden-title = Access denied
error-not-found-title = Page not found
error-not-found = There is no page at this address.
error-internal-title = Something went wrong
error-internal = The server could not complete this request. Please try again later.
error-unavailable-title = Service temporarily unavailable
error-unavailable = The service is busy or under maintenance. Please try again in a moment.
error-form-expired = This form has expired or was not sent from this site. Please try again.
error-form-unreadable = The form could not be read. Please go back and try again.
error-query-unreadable = The address contains parameters that could not be read.

## Sign in
login-title = Sign in
login-username = Username
login-password = Password
login-submit = Sign in
login-or = or
login-with-wechat = Sign in with WeChat
login-error-invalid = Incorrect username or password.
login-error-disabled = This account is disabled. Please contact your administrator.
login-error-throttled = Too many failed attempts. Please try again in { $minutes } minute(s).

## Home
home-title = Signed in
home-signed-in-as = You are signed in as { $name }.
home-consents = Applications you allowed
home-sign-out = Sign out

## Sign out
logout-title = Sign out?
logout-signed-in-as = You are signed in as { $name }.
logout-submit = Sign out
logged-out-title = You are signed out
logged-out-sign-in-again = Sign in again
end-session-title = Sign out?
end-session-client-asks = { $client } asks to sign you out of wxfed.
end-session-someone-asks = An application asks to sign you out of wxfed.
end-session-stay = Stay signed in

## Consent
consent-page-title = Allow access?
consent-title = Allow { $client } to access your account?
consent-signed-in-as = Signed in as { $name }. { $client } would like to:
consent-allow = Allow
consent-deny = Deny
consent-withdraw-later = You can withdraw this later under “Applications you allowed”.
consent-scope-openid = Know who you are (your account id)
consent-scope-profile = See your name and username
consent-scope-email = See your email address
consent-scope-phone = See your phone number
consent-scope-offline_access = Keep access while you are away
consent-scope-wechat = Know your WeChat identity (UnionID, OpenID)
consents-title = Applications you allowed
consents-empty = You have not allowed any application yet.
consents-withdraw = Withdraw
back = Back

## Returning to the application (response_mode=form_post)
form-post-title = Continue
form-post-returning = Returning you to the application…
form-post-continue = Continue

## WeChat
wechat-bind-title = Link your WeChat account
wechat-bind-named = WeChat user { $name } is not linked to an account yet. Sign in with your existing account to link them.
wechat-bind-unnamed = This WeChat account is not linked to an account yet. Sign in with your existing account to link them.
wechat-bind-submit = Sign in and link
wechat-login-failed = WeChat login failed

## Messages from the WeChat login and the authorization endpoint
wechat-no-app = No WeChat app is configured for browser login.
wechat-answer-incomplete = The answer from WeChat is incomplete. Please start again.
wechat-state-used = This WeChat login was already used or has expired. Please start again.
wechat-state-foreign = This WeChat login was started in another browser or has expired. Please start again.
wechat-cancelled = You cancelled the WeChat login. You can sign in again from the login page.
wechat-account-disabled = The account linked to this WeChat account is disabled. Please contact your administrator.
wechat-not-linked = This WeChat account is not linked to an account here. Please ask your administrator to link it.
wechat-enable-cookies = Please enable cookies and start again.
wechat-bind-expired = This WeChat login has expired. Please start again.
wechat-bind-disabled = This account is disabled.
wechat-bind-throttled = Too many failed attempts. Please try again later.
wechat-code-rejected = WeChat did not accept this login (it may have expired or been used already). Please try again.
wechat-busy = WeChat is busy right now. Please try again in a minute.
wechat-unreachable = WeChat could not be reached. Please try again shortly, or sign in with your password.
wechat-misconfigured = WeChat login is not working because of a configuration problem. The administrator has been told; please sign in with your password meanwhile.
wechat-blocked = WeChat blocked this login. Please sign in with your password.
wechat-identity-conflict = This WeChat user is linked to two different accounts. Please ask your administrator to resolve it.
wechat-failed-later = The WeChat login could not be completed. Please try again later.
wechat-not-linked-title = WeChat account not linked
authorize-no-client = The request does not say which application is asking (client_id is missing).
authorize-unknown-client = The application that sent you here is not registered.
authorize-no-redirect-uri = The request has no redirect_uri.
authorize-redirect-uri-unregistered = The redirect_uri of this request is not registered for the application, so wxfed will not send you there.
end-session-hint-foreign = The id_token_hint is not an ID token issued here.
end-session-redirect-unregistered = The post_logout_redirect_uri is not registered for this application, so wxfed will not send you there.
link-refusal-wechat_not_linked = this WeChat user is not linked to an account; ask an administrator
link-refusal-bind_required = this WeChat user is not linked to an account yet; sign in with the account's password to link it
link-refusal-account_disabled = the linked account is disabled
link-refusal-bad_credentials = incorrect username or password
link-refusal-throttled = too many failed attempts; try again later
link-refusal-link_conflict = a linking rule forbids it (the WeChat identity or the account is already linked elsewhere)
link-refusal-identity_conflict = this WeChat user is linked to two accounts; an administrator must resolve it
wechat-link-failed = You are signed in, but the WeChat account could not be linked: { $reason }.
