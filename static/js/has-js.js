// Loaded in <head>, not deferred: side panels become drawers (html.js in portal.css) before the first paint.
// A file of its own rather than an inline <script>, which the Content-Security-Policy refuses.
document.documentElement.classList.add("js");
