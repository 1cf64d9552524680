module github.com/embedstream/stream/prometheus

go 1.26.0

replace (
	github.com/embedstream/stream => ../
	github.com/embedstream/stream/listener => ../listener
)

require github.com/prometheus/client_golang v1.25.0 // indirect
