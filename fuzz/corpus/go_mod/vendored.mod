module example.com/shop

go 1.22

require (
	example.com/greet v1.2.0
	example.com/units v0.3.1
)
