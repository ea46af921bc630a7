package edge

// The edge's own pages name nothing internal: no upstream, address or error text. They
// are built once and never changed.
var (
	pageNotFound       = page("404 Not Found", "There is no app at this address.")
	pageSuspended      = page("This app is suspended", "This app is suspended. If it is yours, sign in to your dashboard to resume it.")
	pageBadGateway     = page("502 Bad Gateway", "The app is not answering right now. Please try again in a moment.")
	pageGatewayTimeout = page("504 Gateway Timeout", "The app took too long to answer. Please try again in a moment.")
	pageTooLarge       = page("413 Content Too Large", "The request is larger than this app accepts.")
)

func page(title, text string) string {
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>` + title + `</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head>
<body><h1>` + title + `</h1><p>` + text + `</p></body></html>
`
}
