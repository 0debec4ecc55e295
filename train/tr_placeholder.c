/* Replaced by the GPU smoke kernel's C side. */
int tr_placeholder(void);
int tr_placeholder(void)
{
    return 0;
}
