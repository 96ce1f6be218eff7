// A go.mod with every directive.
module "example.com/app"

go 1.22.1
toolchain go1.23.4

godebug (
	default=go1.21
	panicnil=1
)

require (
	example.com/a v1.2.3
	example.com/b v0.0.0-20240101000000-abcdefabcdef // indirect
	"example.com/c" v2.0.0+incompatible
)
require example.com/d v1.0.0

replace example.com/a => ../a
replace (
	example.com/b v0.0.0-20240101000000-abcdefabcdef => example.com/fork/b v1.0.1
	"example.com/q" => "./q dir"
)
exclude example.com/c v1.9.9
retract [v1.0.0, v1.0.5] // broken
retract v0.9.0
tool example.com/tools/cmd/gen
ignore ./node_modules
