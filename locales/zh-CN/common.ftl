# 所有人都会看到的页面：登录、授权同意、退出登录、错误。
# 消息 id：<页面>-<内容>。与 en/common.ftl 保持一致（有测试检查）。

brand = wxfed
language-switch = 语言

## 错误
error-bad-request-title = 请求无效
error-forbidden-title = 无权访问
error-not-found-title = 页面不存在
error-not-found = 这个地址没有对应的页面。
error-internal-title = 出错了
error-internal = 服务器暂时无法完成这个请求，请稍后再试。
error-unavailable-title = 服务暂时不可用
error-unavailable = 服务繁忙或正在维护，请稍后再试。
error-form-expired = 表单已过期，或不是从本站提交的。请返回重试。
error-form-unreadable = 无法读取提交的表单，请返回重试。
error-query-unreadable = 地址中的参数无法识别。

## 登录
login-title = 登录
login-username = 用户名
login-password = 密码
login-submit = 登录
login-or = 或
login-with-wechat = 微信登录
login-error-invalid = 用户名或密码错误。
login-error-disabled = 该账号已停用，请联系管理员。
login-error-throttled = 失败次数过多，请 { $minutes } 分钟后再试。

## 首页
home-title = 已登录
home-signed-in-as = 当前登录账号：{ $name }。
home-consents = 已授权的应用
home-sign-out = 退出登录

## 退出登录
logout-title = 确定退出登录？
logout-signed-in-as = 当前登录账号：{ $name }。
logout-submit = 退出登录
logged-out-title = 已退出登录
logged-out-sign-in-again = 重新登录
end-session-title = 确定退出登录？
end-session-client-asks = 「{ $client }」请求让你退出 wxfed 登录。
end-session-someone-asks = 有应用请求让你退出 wxfed 登录。
end-session-stay = 保持登录

## 授权同意
consent-page-title = 授权确认
consent-title = 是否允许「{ $client }」访问你的账号？
consent-signed-in-as = 当前登录账号：{ $name }。「{ $client }」将获得以下权限：
consent-allow = 允许
consent-deny = 拒绝
consent-withdraw-later = 之后可以在“已授权的应用”中撤销授权。
consent-scope-openid = 识别你的身份（账号 ID）
consent-scope-profile = 查看你的姓名和用户名
consent-scope-email = 查看你的邮箱地址
consent-scope-phone = 查看你的手机号
consent-scope-offline_access = 在你离开后继续保持访问
consent-scope-wechat = 获取你的微信身份（UnionID、OpenID）
consents-title = 已授权的应用
consents-empty = 你还没有授权任何应用。
consents-withdraw = 撤销授权
back = 返回

## 返回应用（response_mode=form_post）
form-post-title = 继续
form-post-returning = 正在返回应用…
form-post-continue = 继续

## 微信
wechat-bind-title = 绑定微信账号
wechat-bind-named = 微信用户「{ $name }」还没有绑定账号。请用已有账号登录，完成绑定。
wechat-bind-unnamed = 这个微信账号还没有绑定账号。请用已有账号登录，完成绑定。
wechat-bind-submit = 登录并绑定
wechat-login-failed = 微信登录失败

## 微信登录与授权端点的提示
wechat-no-app = 尚未配置可用于网页登录的微信应用。
wechat-answer-incomplete = 微信返回的信息不完整，请重新发起登录。
wechat-state-used = 这次微信登录已使用或已过期，请重新发起登录。
wechat-state-foreign = 这次微信登录是在其他浏览器中发起的，或已过期，请重新发起登录。
wechat-cancelled = 你已取消微信登录，可以回到登录页重新登录。
wechat-account-disabled = 与该微信绑定的账号已停用，请联系管理员。
wechat-not-linked = 这个微信还没有绑定本系统的账号，请联系管理员绑定。
wechat-enable-cookies = 请启用浏览器 Cookie 后重新发起登录。
wechat-bind-expired = 这次微信登录已过期，请重新发起登录。
wechat-bind-disabled = 该账号已停用。
wechat-bind-throttled = 失败次数过多，请稍后再试。
wechat-code-rejected = 微信未接受这次登录（可能已过期或已被使用），请重试。
wechat-busy = 微信服务繁忙，请一分钟后再试。
wechat-unreachable = 暂时无法连接微信，请稍后再试，或使用密码登录。
wechat-misconfigured = 微信登录因配置问题暂不可用，已通知管理员。请先使用密码登录。
wechat-blocked = 微信拦截了这次登录，请使用密码登录。
wechat-identity-conflict = 这个微信用户同时绑定了两个不同的账号，请联系管理员处理。
wechat-failed-later = 微信登录未能完成，请稍后再试。
wechat-not-linked-title = 微信未绑定
authorize-no-client = 请求中没有说明是哪个应用发起的（缺少 client_id）。
authorize-unknown-client = 将你带到这里的应用尚未注册。
authorize-no-redirect-uri = 请求中缺少回调地址（redirect_uri）。
authorize-redirect-uri-unregistered = 该请求的回调地址（redirect_uri）未在此应用中登记，wxfed 不会跳转过去。
end-session-hint-foreign = id_token_hint 不是本系统签发的 ID 令牌。
end-session-redirect-unregistered = 退出后的回调地址（post_logout_redirect_uri）未在此应用中登记，wxfed 不会跳转过去。
link-refusal-wechat_not_linked = 该微信用户尚未绑定账号，请联系管理员
link-refusal-bind_required = 该微信用户尚未绑定账号，请用账号密码登录完成绑定
link-refusal-account_disabled = 绑定的账号已停用
link-refusal-bad_credentials = 用户名或密码错误
link-refusal-throttled = 失败次数过多，请稍后再试
link-refusal-link_conflict = 违反绑定规则（该微信身份或账号已绑定其他对象）
link-refusal-identity_conflict = 该微信用户绑定了两个账号，需要管理员处理
wechat-link-failed = 你已登录，但微信未能绑定：{ $reason }。
