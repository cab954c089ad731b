// Submits the form_post response form at once (OAuth 2.0 Form Post
// Response Mode); the button is there for browsers without JavaScript.
document.getElementById("form-post").submit();
