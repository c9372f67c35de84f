module vecgate.test/godist

go 1.21
