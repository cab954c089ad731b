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
