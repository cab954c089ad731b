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
