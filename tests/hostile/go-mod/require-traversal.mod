module example.com/app

go 1.21

require ../../escaped v1.0.0
